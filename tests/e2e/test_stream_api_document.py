"""Every sample request of the Stream API document (seed ``003``), sent as written, answers the
document's status and carries the keys of the document's sample response.

The samples and sample responses are copied here verbatim. Only what the contract allows is filled
in: ``api.domo.com`` becomes the server, ``<your-valid-oauth-access-token>`` an OAuth token of the
bootstrap client, and the document's ids (stream 42, execution 1 or 3, dataset ``317970a1-...``,
owner 27) those of objects each test makes by sending the document's "Create a stream" sample.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from tests.support.server import RunningServer

pytestmark = pytest.mark.s3_storage

RETRIEVE_STREAM = """
GET https://api.domo.com/v1/streams/42
Accept: application/json
Authorization: bearer <your-valid-oauth-access-token>
"""

CREATE_STREAM = """
POST https://api.domo.com/v1/streams
Content-Type: application/json
Accept: application/json
Authorization: bearer <your-valid-oauth-access-token>

{
  "dataSet" : {
    "name" : "Leonhard Euler Party",
    "description" : "Mathematician Guest List",
    "schema" : {
      "columns" : [ {
        "type" : "STRING",
        "name" : "Friend"
      }, {
        "type" : "STRING",
        "name" : "Attending"
      } ]
    }
  },
  "updateMethod" : "APPEND"
}
"""

UPDATE_STREAM = """
PUT https://api.domo.com/v1/datasets/317970a1-6a6e-4f70-8e09-44cf5f34cf44
Content-Type: application/json
Accept: application/json
Authorization: bearer <your-valid-oauth-access-token>

{
  "name": "Leonhard Euler Birthday Bash",
  "description": "VIP Guest List",
  "pdpEnabled": true
}
"""

DELETE_STREAM = """
DELETE https://api.domo.com/v1/streams/42
Accept: application/json
Authorization: bearer <your-valid-oauth-access-token>
"""

LIST_STREAMS = """
GET https://api.domo.com/v1/streams/search?q=dataSource.owner.id:27&fields=all
Accept: application/json
Host: api.domo.com
Authorization: bearer <your-valid-oauth-access-token>
"""

RETRIEVE_EXECUTION = """
GET https://api.domo.com/v1/streams/42/executions/1
Accept: application/json
Host: api.domo.com
Authorization: bearer <your-valid-oauth-access-token>
"""

CREATE_EXECUTION = """
POST https://api.domo.com/v1/streams/42/executions
Content-Type: application/json
Accept: application/json
Host: api.domo.com
Authorization: bearer <your-valid-oauth-access-token>
"""

LIST_EXECUTIONS = """
GET https://api.domo.com/v1/streams/42/executions?limit=50&offset=0
Accept: application/json
Authorization: bearer <your-valid-oauth-access-token>
"""

UPLOAD_PART = """
PUT https://api.domo.com/v1/streams/42/executions/1/part/1 HTTP/1.1
Content-Type: text/csv
Accept: application/json
Authorization: bearer <your-valid-oauth-access-token>

"Pythagoras","FALSE"
"Alan Turing","TRUE"
"George Boole","TRUE"
"""

COMMIT_EXECUTION = """
PUT https://api.domo.com/v1/streams/42/executions/1/commit HTTP/1.1
Accept: application/json
Authorization: bearer <your-valid-oauth-access-token>
"""

ABORT_EXECUTION = """
PUT https://api.domo.com/v1/streams/42/executions/3/abort
Accept: application/json
Authorization: bearer <your-valid-oauth-access-token>
"""

# The document's sample responses (the create, update and list ones have the same stream shape).
STREAM_RESPONSE = json.loads("""
{
  "id" : 42,
  "dataSet" : {
    "id" : "0c1e0dbe-9f71-4625-9b50-b79e6e4266f2",
    "name" : "Leonhard Euler Party",
    "description" : "Mathematician Guest List",
    "rows" : 0,
    "columns" : 0,
    "owner" : {
      "id" : 27,
      "name" : "DomoSupport"
    },
    "createdAt" : "2016-05-27T17:53:04Z",
    "updatedAt" : "2016-05-26T21:03:35Z"
  },
  "updateMethod" : "APPEND",
  "createdAt" : "2016-05-26T21:03:35Z",
  "modifiedAt" : "2016-05-26T21:03:35Z"
}
""")

EXECUTION_RESPONSE = json.loads("""
{
  "id" : 1,
  "startedAt" : "2016-05-26T22:20:21Z",
  "currentState" : "ACTIVE",
  "createdAt" : "2016-05-26T22:20:21Z",
  "modifiedAt" : "2016-05-26T22:20:21Z"
}
""")


@pytest.fixture(scope="module")
def tokens() -> dict[int, str]:
    return {}


@pytest.fixture
def doc(server: RunningServer, tokens: dict[int, str]) -> Document:
    if server.port not in tokens:
        tokens[server.port] = server.oauth_token()
    return Document(server, tokens[server.port])


class Document:
    """Sends the document's samples to one server."""

    def __init__(self, server: RunningServer, token: str) -> None:
        self.server = server
        self.token = token

    def send(self, sample: str, **ids: object) -> httpx.Response:
        """Send ``sample`` as written, with the host, the token and ``ids`` filled in: ``stream``,
        ``execution`` and ``dataset`` replace the path segment after ``streams``, ``executions`` and
        ``datasets``; ``owner`` the id in ``q=dataSource.owner.id:``."""
        head, _, body = sample.strip("\n").partition("\n\n")
        request_line, *header_lines = head.splitlines()
        method, target = request_line.split()[:2]
        url = httpx.URL(target)
        segments = url.path.split("/")
        after = {"streams": "stream", "executions": "execution", "datasets": "dataset"}
        for index in range(1, len(segments)):
            name = after.get(segments[index - 1])
            if name in ids and segments[index] != "search":
                segments[index] = str(ids[name])
        query = url.query.decode()
        if "owner" in ids:
            query = query.replace("dataSource.owner.id:27", f"dataSource.owner.id:{ids['owner']}")
        headers = {}
        for line in header_lines:
            key, _, value = line.partition(":")
            value = value.strip().replace("<your-valid-oauth-access-token>", self.token)
            headers[key.strip()] = self.server.host if key.strip().lower() == "host" else value
        path = "/".join(segments) + (f"?{query}" if query else "")
        return httpx.request(
            method,
            self.server.base_url + path,
            headers=headers,
            content=body.encode() if body else None,
            timeout=60,
        )

    def create(self) -> dict[str, Any]:
        response = self.send(CREATE_STREAM)
        assert response.status_code == 201, response.text
        return response.json()

    def execution(self, stream_id: int) -> dict[str, Any]:
        response = self.send(CREATE_EXECUTION, stream=stream_id)
        assert response.status_code == 200, response.text
        return response.json()


def assert_shape(actual: Any, documented: Any, where: str = "body") -> None:
    """``actual`` has every key of ``documented``, at every depth, with a value of the same JSON type
    (extra keys are allowed: real clients read more than the document shows)."""
    if isinstance(documented, dict):
        assert isinstance(actual, dict), f"{where} is {actual!r}, not an object"
        for key, value in documented.items():
            assert key in actual, f"{where} lacks {key!r}: {sorted(actual)}"
            assert_shape(actual[key], value, f"{where}.{key}")
    elif isinstance(documented, bool):
        assert isinstance(actual, bool), f"{where} is {actual!r}, not a boolean"
    elif isinstance(documented, int | float):
        assert isinstance(actual, int | float) and not isinstance(actual, bool), f"{where} is {actual!r}"
    elif isinstance(documented, str):
        assert isinstance(actual, str), f"{where} is {actual!r}, not a string"


def assert_json(response: httpx.Response, status: int) -> Any:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    return response.json()


def test_create_a_stream_answers_201_the_stream_and_its_location(doc: Document):
    response = doc.send(CREATE_STREAM)
    body = assert_json(response, 201)
    assert_shape(body, STREAM_RESPONSE)
    assert response.headers["location"] == f"{doc.server.base_url}/v1/streams/{body['id']}"
    assert body["dataSet"]["name"] == "Leonhard Euler Party"
    assert body["dataSet"]["description"] == "Mathematician Guest List"
    assert body["updateMethod"] == "APPEND" and body["dataSet"]["rows"] == 0


def test_the_location_of_a_created_stream_retrieves_it(doc: Document):
    created = doc.send(CREATE_STREAM)
    again = httpx.get(created.headers["location"], headers={"Authorization": f"bearer {doc.token}"})
    assert again.status_code == 200 and again.json()["id"] == created.json()["id"]


def test_retrieve_a_stream_answers_200_and_the_stream(doc: Document):
    stream = doc.create()
    body = assert_json(doc.send(RETRIEVE_STREAM, stream=stream["id"]), 200)
    assert_shape(body, STREAM_RESPONSE)
    assert body["id"] == stream["id"] and body["dataSet"]["id"] == stream["dataSet"]["id"]


def test_the_update_samples_request_updates_the_dataset_and_answers_200(doc: Document):
    # The sample's request is the DataSet API's update: it must work as written.
    dataset_id = doc.create()["dataSet"]["id"]
    body = assert_json(doc.send(UPDATE_STREAM, dataset=dataset_id), 200)
    assert body["id"] == dataset_id and body["name"] == "Leonhard Euler Birthday Bash"
    assert body["description"] == "VIP Guest List" and body["pdpEnabled"] is True


def test_update_a_stream_as_defined_patches_its_update_method(doc: Document):
    stream = doc.create()
    response = httpx.patch(
        f"{doc.server.base_url}/v1/streams/{stream['id']}",
        headers={"Authorization": f"bearer {doc.token}", "Accept": "application/json"},
        json={"updateMethod": "REPLACE"},
    )
    body = assert_json(response, 200)
    assert_shape(body, STREAM_RESPONSE)
    assert body["updateMethod"] == "REPLACE" and body["dataSet"] == stream["dataSet"]


def test_delete_a_stream_answers_204_and_leaves_its_dataset(doc: Document):
    stream = doc.create()
    response = doc.send(DELETE_STREAM, stream=stream["id"])
    assert response.status_code == 204 and response.content == b""
    assert doc.send(RETRIEVE_STREAM, stream=stream["id"]).status_code == 404
    dataset = httpx.get(
        f"{doc.server.base_url}/v1/datasets/{stream['dataSet']['id']}",
        headers={"Authorization": f"bearer {doc.token}"},
    )
    assert dataset.status_code == 200


def test_list_streams_answers_200_and_the_owners_streams(doc: Document):
    owner = doc.create()["dataSet"]["owner"]["id"]
    body = assert_json(doc.send(LIST_STREAMS, owner=owner), 200)
    assert isinstance(body, list) and body
    for stream in body:
        assert_shape(stream, STREAM_RESPONSE)
        assert stream["dataSet"]["owner"]["id"] == owner


def test_create_a_stream_execution_answers_200_and_an_active_execution(doc: Document):
    stream = doc.create()
    body = assert_json(doc.send(CREATE_EXECUTION, stream=stream["id"]), 200)
    assert_shape(body, EXECUTION_RESPONSE)
    assert body["currentState"] == "ACTIVE"


def test_retrieve_a_stream_execution_answers_200_and_the_execution(doc: Document):
    stream = doc.create()
    execution = doc.execution(stream["id"])
    body = assert_json(doc.send(RETRIEVE_EXECUTION, stream=stream["id"], execution=execution["id"]), 200)
    assert_shape(body, EXECUTION_RESPONSE)
    assert body["id"] == execution["id"]


def test_list_stream_executions_answers_200_and_the_executions(doc: Document):
    stream = doc.create()
    execution = doc.execution(stream["id"])
    body = assert_json(doc.send(LIST_EXECUTIONS, stream=stream["id"]), 200)
    assert [e["id"] for e in body] == [execution["id"]]
    assert_shape(body[0], EXECUTION_RESPONSE)


def test_upload_a_data_part_and_commit_answer_200_and_load_the_rows(doc: Document):
    stream = doc.create()
    ids = {"stream": stream["id"], "execution": doc.execution(stream["id"])["id"]}
    uploaded = assert_json(doc.send(UPLOAD_PART, **ids), 200)
    assert_shape(uploaded, EXECUTION_RESPONSE)
    committed = assert_json(doc.send(COMMIT_EXECUTION, **ids), 200)
    assert_shape(committed, EXECUTION_RESPONSE)
    assert committed["currentState"] == "SUCCESS"
    rows = httpx.post(
        f"{doc.server.base_url}/v1/datasets/query/execute/{stream['dataSet']['id']}",
        headers={"Authorization": f"bearer {doc.token}"},
        json={"sql": "SELECT Friend, Attending FROM table ORDER BY Friend"},
    ).json()["rows"]
    assert rows == [["Alan Turing", "TRUE"], ["George Boole", "TRUE"], ["Pythagoras", "FALSE"]]


def test_abort_a_stream_execution_answers_200_and_the_aborted_execution(doc: Document):
    # The document shows 204, but pydomo's abort_execution takes exactly 200 and reads the id.
    stream = doc.create()
    execution = doc.execution(stream["id"])
    body = assert_json(doc.send(ABORT_EXECUTION, stream=stream["id"], execution=execution["id"]), 200)
    assert_shape(body, EXECUTION_RESPONSE)
    assert body["id"] == execution["id"] and body["currentState"] == "ABORTED"


def test_abort_the_current_execution_answers_204(doc: Document):
    stream = doc.create()
    execution = doc.execution(stream["id"])
    response = httpx.put(
        f"{doc.server.base_url}/v1/streams/{stream['id']}/executions/abort",
        headers={"Authorization": f"bearer {doc.token}", "Accept": "application/json"},
    )
    assert response.status_code == 204
    after = doc.send(RETRIEVE_EXECUTION, stream=stream["id"], execution=execution["id"])
    assert after.json()["currentState"] == "ABORTED"
