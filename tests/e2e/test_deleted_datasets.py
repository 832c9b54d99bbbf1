"""A stream outlives its dataset (the Stream API document, "Retrieve a stream"): once the dataset is
deleted the stream answers a subset with ``deleted: true``, refuses writes with 410, keeps its
executions readable, is seen only by admins and the dataset's last owner, and goes when deleted."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from tests.e2e.test_sharing import Person, new_person
from tests.support.server import RunningServer

SCHEMA = {"columns": [{"type": "STRING", "name": "Friend"}, {"type": "STRING", "name": "Attending"}]}
PRODUCT = "/api/data/v1/streams"


@dataclass(frozen=True)
class Deleted:
    """A stream whose dataset its owner deleted, with one committed and one ACTIVE execution."""

    owner: Person
    viewer: Person
    stream_id: int
    dataset_id: str
    committed: int
    active: int


_made: dict[int, Deleted] = {}


@pytest.fixture
def deleted(server: RunningServer) -> Deleted:
    """One per server, shared by the tests that only read it or are refused."""
    if server.port not in _made:
        _made[server.port] = make_deleted(server)
    return _made[server.port]


def make_deleted(server: RunningServer) -> Deleted:
    owner, viewer = new_person(server, role="Editor"), new_person(server)
    with owner.client(server) as client:
        created = client.post(
            "/v1/streams",
            json={
                "dataSet": {"name": "Euler", "description": "guests", "schema": SCHEMA},
                "updateMethod": "APPEND",
            },
        ).json()
        sid, dataset_id = created["id"], created["dataSet"]["id"]
        grant = {"type": "USER", "id": viewer.id, "accessLevel": "CO_OWNER"}
        shared = client.post(f"/api/data/v3/datasources/{dataset_id}/share", json={"permissions": [grant]})
        assert shared.status_code == 200, shared.text
        committed = client.post(f"/v1/streams/{sid}/executions").json()["id"]
        client.put(f"/v1/streams/{sid}/executions/{committed}/part/1", content=b"Boole,yes\n")
        assert client.put(f"/v1/streams/{sid}/executions/{committed}/commit").status_code == 200
        active = client.post(f"/v1/streams/{sid}/executions").json()["id"]
        assert (
            client.put(f"/v1/streams/{sid}/executions/{active}/part/1", content=b"Turing,no\n").status_code
            == 200
        )
        assert (server.data_dir / "staging" / "executions" / str(active)).exists()
        assert client.delete(f"/v1/datasets/{dataset_id}").status_code == 204
    return Deleted(owner, viewer, sid, dataset_id, committed, active)


def test_the_stream_answers_the_documents_subset_with_deleted_true(server: RunningServer, deleted: Deleted):
    with deleted.owner.client(server) as client:
        response = client.get(f"/v1/streams/{deleted.stream_id}")
        assert client.get(f"/v1/datasets/{deleted.dataset_id}").status_code == 404
    assert response.status_code == 200
    body = response.json()
    assert body.keys() == {"id", "dataSet", "updateMethod", "createdAt", "modifiedAt", "deleted"}
    assert body["id"] == deleted.stream_id and body["deleted"] is True
    assert body["dataSet"] == {"id": deleted.dataset_id, "name": "Euler", "description": "guests"}
    assert body["updateMethod"] == "APPEND" and body["createdAt"].endswith("Z")


def test_the_product_api_answers_the_default_keys_that_still_hold_and_deleted(
    server: RunningServer, deleted: Deleted
):
    with deleted.owner.client(server) as client:
        plain = client.get(f"{PRODUCT}/{deleted.stream_id}").json()
        full = client.get(f"{PRODUCT}/{deleted.stream_id}", params={"fields": "all"}).json()
        some = client.get(f"{PRODUCT}/{deleted.stream_id}", params={"fields": "id,status,transport"}).json()
    assert plain == {
        "id": deleted.stream_id,
        "userId": deleted.owner.id,
        "name": "Euler",
        "displayName": "Euler",
        "type": "API",
        "dataProviderType": "api",
        "valid": False,
        "status": "deleted",
        "deleted": True,
    }
    assert full["dataSource"] == {"id": deleted.dataset_id, "name": "Euler", "description": "guests"}
    assert full["updateMethod"] == "APPEND" and full["deleted"] is True
    assert some == {"id": deleted.stream_id, "status": "deleted"}


def test_its_active_execution_was_aborted_and_its_staged_parts_removed(
    server: RunningServer, deleted: Deleted
):
    with deleted.owner.client(server) as client:
        execution = client.get(f"/v1/streams/{deleted.stream_id}/executions/{deleted.active}").json()
    assert execution["currentState"] == "ABORTED" and deleted.dataset_id in execution["errorMessage"]
    assert not (server.data_dir / "staging" / "executions" / str(deleted.active)).exists()


def test_its_executions_stay_readable(server: RunningServer, deleted: Deleted):
    with deleted.owner.client(server) as client:
        listed = client.get(f"/v1/streams/{deleted.stream_id}/executions")
        one = client.get(f"/v1/streams/{deleted.stream_id}/executions/{deleted.committed}")
        product = client.get(f"{PRODUCT}/{deleted.stream_id}/executions/{deleted.committed}")
        history = client.get(f"{PRODUCT}/{deleted.stream_id}/history/aggregate")
    assert [e["id"] for e in listed.json()] == [deleted.committed, deleted.active]
    assert one.status_code == 200 and one.json()["currentState"] == "SUCCESS" and one.json()["rows"] == 1
    assert product.status_code == 200 and product.json()["currentState"] == "SUCCESS"
    assert [e["executionId"] for e in history.json()] == [deleted.active, deleted.committed]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/v1/streams/{s}/executions"),
        ("PUT", "/v1/streams/{s}/executions/{e}/part/2"),
        ("PUT", "/v1/streams/{s}/executions/{e}/commit"),
        ("PUT", "/v1/streams/{s}/executions/{e}/abort"),
        ("PUT", "/v1/streams/{s}/executions/abort"),
        ("PATCH", "/v1/streams/{s}"),
        ("POST", PRODUCT + "/{s}/executions"),
        ("PUT", PRODUCT + "/{s}/executions/{e}/part/2"),
        ("PUT", PRODUCT + "/{s}/executions/{e}/commit"),
        ("PUT", PRODUCT + "/{s}"),
    ],
)
def test_writes_to_it_are_410_naming_the_deleted_dataset(
    server: RunningServer, deleted: Deleted, method: str, path: str
):
    url = path.format(s=deleted.stream_id, e=deleted.active)
    body = {"content": b"Gauss,yes\n"} if "/part/" in url else {"json": {"updateMethod": "REPLACE"}}
    with deleted.owner.client(server) as client:
        response = client.request(method, url, **body)
    assert response.status_code == 410, response.text
    error = response.json()
    assert error["status"] == 410 and error["statusReason"] == "Gone" and error["code"] == "dataset_deleted"
    assert deleted.dataset_id in error["message"]


def test_admins_see_it_and_so_does_the_datasets_last_owner(server: RunningServer, deleted: Deleted):
    with server.client() as admin:
        assert admin.get(f"/v1/streams/{deleted.stream_id}").json()["deleted"] is True
        assert admin.get(f"{PRODUCT}/{deleted.stream_id}").json()["status"] == "deleted"
        assert admin.post(f"/v1/streams/{deleted.stream_id}/executions").status_code == 410


def test_everyone_else_gets_404_even_its_former_co_owner(server: RunningServer, deleted: Deleted):
    stranger = new_person(server, role="Editor")
    for person in (deleted.viewer, stranger):
        with person.client(server) as client:
            for method, url in (
                ("GET", f"/v1/streams/{deleted.stream_id}"),
                ("GET", f"{PRODUCT}/{deleted.stream_id}"),
                ("GET", f"/v1/streams/{deleted.stream_id}/executions"),
                ("POST", f"/v1/streams/{deleted.stream_id}/executions"),
                ("DELETE", f"/v1/streams/{deleted.stream_id}"),
            ):
                assert client.request(method, url).status_code == 404, (person.name, method, url)


def test_lists_and_searches_leave_it_out(server: RunningServer, deleted: Deleted):
    with deleted.owner.client(server) as client:
        assert (
            client.get("/v1/streams/search", params={"q": f"dataSource.id:{deleted.dataset_id}"}).json() == []
        )
        owned = client.get("/v1/streams/search", params={"q": f"dataSource.owner.id:{deleted.owner.id}"})
        assert owned.json() == []
        assert client.get("/v1/streams", params={"limit": 500}).json() == []
        assert client.get(PRODUCT, params={"limit": 500}).json() == []


def test_deleting_the_stream_removes_it(server: RunningServer):
    deleted = make_deleted(server)
    with deleted.owner.client(server) as client:
        assert client.delete(f"/v1/streams/{deleted.stream_id}").status_code == 204
        assert client.get(f"/v1/streams/{deleted.stream_id}").status_code == 404
        assert client.get(f"{PRODUCT}/{deleted.stream_id}").status_code == 404
        assert client.get(f"/v1/streams/{deleted.stream_id}/executions").status_code == 404
        assert client.delete(f"/v1/streams/{deleted.stream_id}").status_code == 404


def test_pydomo_reads_it(domo, server: RunningServer):
    with server.client() as admin:
        created = admin.post("/v1/streams", json={"dataSet": {"name": "pydomo tombstone", "schema": SCHEMA}})
        stream = created.json()
        assert admin.delete(f"/v1/datasets/{stream['dataSet']['id']}").status_code == 204
    read = domo.streams.get(stream["id"])
    assert read["deleted"] is True and read["dataSet"]["id"] == stream["dataSet"]["id"]
    with pytest.raises(Exception, match="410"):
        domo.streams.create_execution(stream["id"])
    domo.streams.delete(stream["id"])
    with pytest.raises(Exception, match="404"):
        domo.streams.get(stream["id"])
