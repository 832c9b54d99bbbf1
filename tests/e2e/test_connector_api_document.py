"""The document's three connector snippets, run as written against a real server, take their
success branch (seed ``000``: "Stream (Connector) - Create", "Execute Dataset Stream", "Stream
Execution History").

The snippets are the document's own, byte for byte (a test compares them with the document when it
is at hand). Filled in by plain text replacement: the host, the token, the ids (``accountId``,
``stream123``) and the create snippet's placeholder connector (``providerKey`` -> ``csv``,
``exampleKey``/``exampleValue`` -> a ``url`` of a CSV file on a local HTTP server).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.test_datasets_api_document import run as run_snippet
from tests.support.connector_streams import new_account, rows, wait_for
from tests.support.server import RunningServer
from tests.support.sources import FileServer, Served

SEED = Path(__file__).resolve().parents[3] / "shared" / "seeds" / "000_ef20cea409927021.txt"

SNIPPETS = {
    "Stream (Connector) - Create": """import httpx

headers = {
    'X-DOMO-Developer-Token': '<your-token-here>',
    'Content-Type': 'application/json',
}
url = 'https://<domo-instance-here>/api/data/v1/streams'

payload = {
    "transport": {"type": "exampleType", "version": "1.0"},
    "configuration": [{"key": "exampleKey", "value": "exampleValue"}],
    "account": {"id": "accountId"},
    "updateMethod": "APPEND",
    "dataProvider": {"key": "providerKey"},
    "dataSource": {"name": "exampleName", "description": "exampleDescription"},
    "advancedScheduleJson": "{}"
}

with httpx.Client() as client:
    response = client.post(url, headers=headers, json=payload)
    print(response.json())
""",
    "Execute Dataset Stream": """import httpx

headers = {
    'X-DOMO-Developer-Token': '<your-token-here>',
    'Content-Type': 'application/json',
}
url = 'https://<domo-instance-here>/api/data/v1/streams/stream123/executions'

payload = {
    "action": "Manual"
}

with httpx.Client() as client:
    response = client.post(url, headers=headers, json=payload)
    if response.status_code == 200:
        print('Stream executed successfully')
    else:
        print('Failed to execute stream')
""",
    "Stream Execution History": """import httpx

headers = {
    'X-DOMO-Developer-Token': '<your-token-here>',
    'Content-Type': 'application/json',
}
url = 'https://<domo-instance-here>/api/data/v1/streams/stream123/history/aggregate'

with httpx.Client() as client:
    response = client.get(url, headers=headers)
    print(response.json())
""",
}


@pytest.fixture(scope="module")
def web() -> Iterator[FileServer]:
    served = FileServer()
    served.files["/sales.csv"] = Served(b"region,amount\nnorth,10\nsouth,32\n")
    yield served
    served.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = RunningServer(
        data_dir=tmp_path_factory.mktemp("connector-document"),
        catalog_url=None,
        extra_env={"DATAGROVE_CONNECTOR_ALLOWED_HOSTS": "127.0.0.1"},
    ).start()
    yield running
    running.stop()


def test_the_snippets_here_are_the_documents_own():
    if not SEED.exists():
        pytest.skip("the seed documents are not beside this checkout")
    document = SEED.read_text()
    for section, snippet in SNIPPETS.items():
        assert f"## {section}" in document
        assert snippet in document[document.index(f"## {section}") :], section


def test_create_execute_and_history_run_as_written(server: RunningServer, web: FileServer):
    with server.client() as client:
        account = new_account(client, "http", {"bearerToken": "unused"})
    printed, response = run_snippet(
        SNIPPETS["Stream (Connector) - Create"],
        server,
        accountId=account,
        providerKey="csv",
        exampleKey="url",
        exampleValue=f"{web.url}/sales.csv",
    )
    created = ast.literal_eval(printed.strip())
    assert response.status_code == 201, created
    assert created["status"] == "created" and isinstance(created["id"], int)
    assert created["dataProvider"]["key"] == "csv" and created["updateMethod"] == "APPEND"
    assert created["dataSource"]["name"] == "exampleName"
    assert created["advancedScheduleJson"] == '{"type":"MANUAL","timezone":"UTC"}'
    stream_id = str(created["id"])

    printed, response = run_snippet(SNIPPETS["Execute Dataset Stream"], server, stream123=stream_id)
    assert printed == "Stream executed successfully\n", response.text
    started = response.json()
    assert started["status"] == "started" and started["currentState"] == "ACTIVE"
    with server.client() as client:
        ended = wait_for(client, created["id"], started["executionId"])
        assert ended["currentState"] == "SUCCESS", ended
        assert rows(
            client, created["dataSource"]["id"], "SELECT region, amount FROM table ORDER BY region"
        ) == [
            {"region": "north", "amount": 10},
            {"region": "south", "amount": 32},
        ]

    printed, response = run_snippet(SNIPPETS["Stream Execution History"], server, stream123=stream_id)
    entries = ast.literal_eval(printed.strip())
    assert response.status_code == 200
    assert entries[0]["executionId"] == started["executionId"]
    assert entries[0]["status"] == "completed"
    assert isinstance(entries[0]["duration"], (int, float))
    assert entries[0]["rowsInserted"] == 2 and entries[0]["runType"] == "MANUAL"
