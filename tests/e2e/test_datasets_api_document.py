"""Every Python snippet of the Datasets API seed document, run as written against a real server.

The snippets below are the document's own (``shared/seeds/000_ef20cea409927021.txt``), byte for
byte; a test checks that against the document when it is at hand. Only the host, the ids and the
token are filled in, by plain text replacement, and each snippet runs with ``exec``: its own
``status_code == 200`` checks must take their success branch, and what it prints must have the
documented shape. The three connector sections belong to the connectors' own tests.
"""

from __future__ import annotations

import ast
import contextlib
import io
import re
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.test_sharing import new_person, share
from tests.support.server import RunningServer

pytestmark = pytest.mark.s3_storage

SEED = Path(__file__).resolve().parents[3] / "shared" / "seeds" / "000_ef20cea409927021.txt"

SNIPPETS = {
    "Get a Stream Representation": """import httpx

headers = {
    'X-DOMO-Developer-Token': '<your-token-here>',
    'Content-Type': 'application/json',
}
url = 'https://<domo-instance-here>/api/data/v1/streams/12345'

with httpx.Client() as client:
    response = client.get(url, headers=headers)
    print(response.json())
""",
    "Get a DataSource Representation": """import httpx

headers = {
    'X-DOMO-Developer-Token': '<your-token-here>',
    'Content-Type': 'application/json',
}
url = 'https://<domo-instance-here>/api/data/v3/datasources/abc123'

with httpx.Client() as client:
    response = client.get(url, headers=headers)
    print(response.json())
""",
    "Query with SQL": """import httpx

headers = {
    'X-DOMO-Developer-Token': '<your-token-here>',
    'Content-Type': 'application/json',
}
url = 'https://<domo-instance-here>/api/query/v1/execute/12345'

payload = {"sql": "SELECT * FROM table"}

with httpx.Client() as client:
    response = client.post(url, headers=headers, json=payload)
    print(response.json())
""",
    "Dataset Access List": """import httpx

headers = {
    'X-DOMO-Developer-Token': '<your-token-here>',
    'Content-Type': 'application/json',
}
url = 'https://<domo-instance-here>/api/data/v3/datasources/abc123/permissions'

with httpx.Client() as client:
    response = client.get(url, headers=headers)
    print(response.json())
""",
    "Revoke Dataset Access": """import httpx

headers = {
    'X-DOMO-Developer-Token': '<your-token-here>',
    'Content-Type': 'application/json',
}
url = 'https://<domo-instance-here>/api/data/v3/datasources/abc123/permissions/USER/user456'

with httpx.Client() as client:
    response = client.delete(url, headers=headers)
    if response.status_code == 200:
        print('Access revoked successfully')
    else:
        print('Failed to revoke access')
""",
    "Get Metadata": """import httpx

headers = {
    'X-DOMO-Developer-Token': '<your-token-here>',
    'Content-Type': 'application/json',
}
url = 'https://<domo-instance-here>/api/data/v3/datasources/abc123?requestedParts=core,permission'

with httpx.Client() as client:
    response = client.get(url, headers=headers)
    print(response.json())
""",
    "Append Row to Dataset": """import httpx

headers = {
    'X-DOMO-Developer-Token': '<your-token-here>',
    'Content-Type': 'application/json',
}
url = 'https://<domo-instance-here>/api/data/v3/datasources/abc123/uploads'

payload = {
    "values": "value1,value2,value3",
    "delimiter": ","
}

with httpx.Client() as client:
    response = client.post(url, headers=headers, json=payload)
    if response.status_code == 200:
        print('Row appended successfully')
    else:
        print('Failed to append row')
""",
}


def run(snippet: str, server: RunningServer, **ids: str) -> tuple[str, Any]:
    """Run ``snippet`` with the host, the token and ``ids`` (document id -> real id) filled in;
    returns what it printed and its ``response``."""
    code = snippet.replace("https://<domo-instance-here>", server.base_url)
    code = code.replace("<your-token-here>", server.token)
    for placeholder, real in ids.items():
        code = code.replace(placeholder, real)
    printed = io.StringIO()
    namespace: dict[str, Any] = {}
    with contextlib.redirect_stdout(printed):
        exec(compile(code, "<seed snippet>", "exec"), namespace)  # noqa: S102 - the document's own code
    return printed.getvalue(), namespace["response"]


def printed_json(printed: str) -> Any:
    """``print(response.json())`` prints a Python repr; read it back."""
    return ast.literal_eval(printed.strip())


@pytest.fixture
def seeded(server: RunningServer) -> dict[str, str]:
    """A dataset with the document's columns (column1..3), one row, a stream, and a second user
    holding a grant on it."""
    schema = {"columns": [{"type": "STRING", "name": f"column{i}"} for i in (1, 2, 3)]}
    reader = new_person(server, role="Participant")
    with server.client() as client:
        created = client.post(
            "/v1/streams", json={"dataSet": {"name": "seed-" + uuid.uuid4().hex[:8], "schema": schema}}
        )
        assert created.status_code == 201, created.text
        stream_id, dataset_id = str(created.json()["id"]), created.json()["dataSet"]["id"]
        assert (
            client.put(f"/v1/datasets/{dataset_id}/data", content=b"value1,value2,value3\n").status_code
            == 204
        )
        assert (
            share(
                client, dataset_id, {"type": "USER", "id": reader.id, "accessLevel": "CAN_VIEW"}
            ).status_code
            == 200
        )
    return {"stream": stream_id, "dataset": dataset_id, "user": str(reader.id)}


def test_the_snippets_here_are_the_documents_own():
    if not SEED.exists():
        pytest.skip("the seed documents are not beside this checkout")
    document = SEED.read_text()
    blocks = re.findall(r"```python\n(.*?)```", document, re.DOTALL)
    for section, snippet in SNIPPETS.items():
        assert f"## {section}" in document
        assert snippet in blocks, section


def test_get_a_stream_representation(server: RunningServer, seeded: dict[str, str]):
    printed, response = run(SNIPPETS["Get a Stream Representation"], server, **{"12345": seeded["stream"]})
    assert response.status_code == 200
    body = printed_json(printed)
    assert set(body) >= {"id", "userId", "name", "displayName", "type", "dataProviderType", "valid"}
    assert body["id"] == int(seeded["stream"]) and isinstance(body["userId"], int) and body["valid"] is True


def test_get_a_datasource_representation(server: RunningServer, seeded: dict[str, str]):
    printed, response = run(SNIPPETS["Get a DataSource Representation"], server, abc123=seeded["dataset"])
    assert response.status_code == 200
    body = printed_json(printed)
    assert body["id"] == seeded["dataset"] and isinstance(body["name"], str) and isinstance(body["type"], str)
    assert isinstance(body["status"], str)
    assert body["details"] == {"rows": 1, "columns": 3}


def test_query_with_sql_answers_a_list_of_row_objects(server: RunningServer, seeded: dict[str, str]):
    printed, response = run(SNIPPETS["Query with SQL"], server, **{"12345": seeded["dataset"]})
    assert response.status_code == 200
    assert printed_json(printed) == [{"column1": "value1", "column2": "value2", "column3": "value3"}]


def test_dataset_access_list(server: RunningServer, seeded: dict[str, str]):
    printed, response = run(SNIPPETS["Dataset Access List"], server, abc123=seeded["dataset"])
    assert response.status_code == 200
    body = printed_json(printed)
    assert all({"id", "type", "accessLevel"} <= set(entry) for entry in body["list"])
    assert {"id": seeded["user"], "type": "USER"}.items() <= next(
        entry for entry in body["list"] if entry["id"] == seeded["user"]
    ).items()


def test_revoke_dataset_access_takes_its_success_branch(server: RunningServer, seeded: dict[str, str]):
    printed, response = run(
        SNIPPETS["Revoke Dataset Access"], server, abc123=seeded["dataset"], user456=seeded["user"]
    )
    assert printed.strip() == "Access revoked successfully"
    assert response.json() == {}


def test_get_metadata_with_requested_parts(server: RunningServer, seeded: dict[str, str]):
    printed, response = run(SNIPPETS["Get Metadata"], server, abc123=seeded["dataset"])
    assert response.status_code == 200
    body = printed_json(printed)
    assert body["id"] == seeded["dataset"] and isinstance(body["name"], str)
    assert {"rows": 1, "columns": 3}.items() <= body["properties"].items()


def test_append_row_takes_its_success_branch_and_the_row_is_there(
    server: RunningServer, seeded: dict[str, str]
):
    printed, response = run(SNIPPETS["Append Row to Dataset"], server, abc123=seeded["dataset"])
    assert printed.strip() == "Row appended successfully"
    assert response.json() == {}
    query_printed, _ = run(SNIPPETS["Query with SQL"], server, **{"12345": seeded["dataset"]})
    assert (
        printed_json(query_printed) == [{"column1": "value1", "column2": "value2", "column3": "value3"}] * 2
    )
