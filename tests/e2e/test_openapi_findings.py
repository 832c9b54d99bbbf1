"""Regressions for what the API fuzzing (test_openapi_fuzz.py) found, each as its own behaviour."""

from __future__ import annotations

import pytest

from tests.support.server import RunningServer

SCHEMA = {"columns": [{"type": "STRING", "name": "city"}, {"type": "LONG", "name": "sales"}]}


def dataset_with_rows(server: RunningServer, name: str) -> tuple[str, int]:
    with server.client() as http:
        stream = http.post("/v1/streams", json={"dataSet": {"name": name, "schema": SCHEMA}}).json()
        dataset_id = stream["dataSet"]["id"]
        http.put(f"/v1/datasets/{dataset_id}/data", content="Berlin,120\nLisbon,75\n").raise_for_status()
    return dataset_id, stream["id"]


@pytest.mark.parametrize("api", ["v1 dataset PUT", "product stream PUT"])
def test_removing_every_column_of_a_dataset_with_rows_is_a_400_that_changes_nothing(server, unique, api):
    dataset_id, stream_id = dataset_with_rows(server, unique)
    with server.client() as http:
        if api == "v1 dataset PUT":
            response = http.put(f"/v1/datasets/{dataset_id}", json={"schema": {"columns": []}})
        else:
            response = http.put(
                f"/api/data/v1/streams/{stream_id}", json={"schemaDefinition": {"columns": []}}
            )
        assert response.status_code == 400, response.text
        assert "at least one column" in response.json()["message"]
        after = http.get(f"/v1/datasets/{dataset_id}").json()
        assert (after["schema"], after["rows"]) == (SCHEMA, 2)


def test_an_empty_dataset_may_still_drop_its_columns(server, unique):
    with server.client() as http:
        created = http.post("/v1/datasets", json={"name": unique, "schema": SCHEMA}).json()
        response = http.put(f"/v1/datasets/{created['id']}", json={"schema": {"columns": []}})
        assert response.status_code == 200, response.text
        assert response.json()["schema"] == {"columns": []}
