"""Developer tokens through ``/api/data/v1/accesstokens``, and the activity log at ``/v1/audit``."""

from __future__ import annotations

import time
import uuid

import httpx

from tests.e2e.test_sharing import DS, new_dataset, new_person, share
from tests.support.server import RunningServer

TOKENS = "/api/data/v1/accesstokens"


def in_a_day() -> int:
    return int(time.time() * 1000) + 86_400_000


def audit(server: RunningServer, **params: int | str) -> list[dict]:
    with server.client() as admin:
        response = admin.get("/v1/audit", params={"limit": 1000, **params})
    assert response.status_code == 200, response.text
    return response.json()


# --- developer tokens -------------------------------------------------------------------------------


def test_a_new_token_is_shown_once_and_works_at_once(server: RunningServer):
    person = new_person(server)
    with person.client(server) as client:
        response = client.post(TOKENS, json={"name": "mine", "ownerId": person.id, "expires": in_a_day()})
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["token"].startswith("DDCI") and body["ownerId"] == person.id and body["name"] == "mine"
        assert abs(body["expires"] - in_a_day()) < 60_000
        listed = client.get(TOKENS).json()
    assert body["id"] in {t["id"] for t in listed}
    assert all("token" not in t for t in listed)
    assert (
        httpx.get(
            f"{server.base_url}/v1/datasets", headers={"X-DOMO-Developer-Token": body["token"]}
        ).status_code
        == 200
    )


def test_a_user_lists_only_their_own_tokens_and_an_admin_all(server: RunningServer):
    one, two = new_person(server), new_person(server)
    with one.client(server) as client:
        assert {t["ownerId"] for t in client.get(TOKENS).json()} == {one.id}
    with server.client() as admin:
        owners = {t["ownerId"] for t in admin.get(TOKENS).json()}
    assert {one.id, two.id} <= owners


def test_only_admins_issue_tokens_for_someone_else(server: RunningServer):
    one, two = new_person(server), new_person(server)
    with one.client(server) as client:
        response = client.post(TOKENS, json={"name": "theirs", "ownerId": two.id, "expires": in_a_day()})
    assert response.status_code == 403
    with server.client() as admin:
        assert (
            admin.post(TOKENS, json={"name": "x", "ownerId": 987654321, "expires": in_a_day()}).status_code
            == 400
        )
        assert admin.post(TOKENS, json={"name": "x", "expires": 1000}).status_code == 400  # in the past
        assert admin.post(TOKENS, json={"ownerId": two.id}).status_code == 400  # no name


def test_a_deleted_token_is_refused_on_the_very_next_request(server: RunningServer):
    person = new_person(server)
    with server.client() as admin:
        issued = admin.post(
            TOKENS, json={"name": "short", "ownerId": person.id, "expires": in_a_day()}
        ).json()
        headers = {"X-DOMO-Developer-Token": issued["token"]}
        assert httpx.get(f"{server.base_url}/v1/datasets", headers=headers).status_code == 200
        deleted = admin.delete(f"{TOKENS}/{issued['id']}")
        assert deleted.status_code == 200
        assert httpx.get(f"{server.base_url}/v1/datasets", headers=headers).status_code == 401
        assert issued["id"] not in {t["id"] for t in admin.get(TOKENS).json()}
        assert admin.delete(f"{TOKENS}/{issued['id']}").status_code == 404


def test_a_user_may_revoke_their_own_token_but_not_someone_elses(server: RunningServer):
    one, two = new_person(server), new_person(server)
    with server.client() as admin:
        twos = [t["id"] for t in admin.get(TOKENS).json() if t["ownerId"] == two.id]
    with one.client(server) as client:
        assert client.delete(f"{TOKENS}/{twos[0]}").status_code == 404
        own = client.post(TOKENS, json={"name": "spare", "expires": in_a_day()}).json()
        assert own["ownerId"] == one.id
        assert client.delete(f"{TOKENS}/{own['id']}").status_code == 200
    with two.client(server) as client:
        assert client.get("/v1/datasets").status_code == 200


def test_a_credential_without_the_user_scope_cannot_manage_tokens(server: RunningServer):
    headers = {"Authorization": f"bearer {server.oauth_token('data')}"}
    with server.client() as admin:
        token_id = admin.post(TOKENS, json={"name": "kept", "expires": in_a_day()}).json()["id"]
    with httpx.Client(base_url=server.base_url, headers=headers) as client:
        assert client.get(TOKENS).status_code == 403
        assert client.post(TOKENS, json={"name": "x", "expires": in_a_day()}).status_code == 403
        assert client.delete(f"{TOKENS}/{token_id}").status_code == 403
    with server.client() as admin:
        assert token_id in {t["id"] for t in admin.get(TOKENS).json()}
        assert admin.delete(f"{TOKENS}/{token_id}").status_code == 200


# --- the activity log ------------------------------------------------------------------------------


def test_audit_entries_have_domos_fields(server: RunningServer):
    with new_person(server, role="Editor").client(server) as client:
        new_dataset(client)
    entry = audit(server, limit=1)[0]
    assert set(entry) == {
        "userName",
        "userId",
        "userType",
        "actorId",
        "actorType",
        "objectName",
        "objectId",
        "objectType",
        "additionalComment",
        "time",
        "eventText",
        "device",
        "browserDetails",
        "ipAddress",
    }
    assert entry["userType"] == "USER" and abs(entry["time"] - time.time() * 1000) < 120_000


def test_a_write_a_share_a_revoke_and_a_query_are_audited(server: RunningServer):
    owner, viewer = new_person(server, role="Editor"), new_person(server)
    with owner.client(server) as client:
        dataset_id = new_dataset(client, "a,1\n")
        client.post(f"{DS}/{dataset_id}/uploads", json={"values": "b,2"})
        share(client, dataset_id, {"type": "USER", "id": viewer.id, "accessLevel": "CAN_VIEW"})
        client.delete(f"{DS}/{dataset_id}/permissions/USER/{viewer.id}")
        client.delete(f"{DS}/{dataset_id}/permissions/USER/{owner.id}")  # refused: the last owner
        client.post(f"/api/query/v1/execute/{dataset_id}", json={"sql": "SELECT COUNT(*) FROM table"})
    entries = [e for e in audit(server, user=owner.id) if e["objectId"] == dataset_id]
    assert all(e["userId"] == owner.id and e["userName"] == owner.name for e in entries)
    texts = [e["eventText"] for e in entries]
    assert "Imported data into DataSet" in texts
    assert "Queried DataSet" in texts
    shared = next(e for e in entries if e["eventText"] == "Shared DataSet")
    assert f"USER {viewer.id}" in shared["additionalComment"] and "CAN_VIEW" in shared["additionalComment"]
    revoked = next(e for e in entries if e["eventText"] == "Revoked access to DataSet")
    assert f"USER {viewer.id}" in revoked["additionalComment"]
    refused = next(e for e in entries if e["eventText"] == "Revoked access to DataSet (failed)")
    assert "last OWNER" in refused["additionalComment"]


def test_a_failed_oauth_login_is_audited_with_the_client_id_and_never_the_secret(server: RunningServer):
    secret = "wrong-" + uuid.uuid4().hex
    refused = httpx.post(
        f"{server.base_url}/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=(server.client_id, secret),
    )
    assert refused.status_code == 401
    failures = [
        e
        for e in audit(server)
        if e["eventText"] == "Logged in (failed)" and e["objectType"] == "OAUTH_CLIENT"
    ]
    assert any(server.client_id in e["additionalComment"] for e in failures)
    assert failures[0]["userId"] is None and failures[0]["ipAddress"] == "127.0.0.1"
    assert all(secret not in str(e) for e in audit(server))


def test_an_unknown_developer_token_is_audited_without_its_value(server: RunningServer):
    token = "DDCI" + uuid.uuid4().hex
    assert (
        httpx.get(f"{server.base_url}/v1/datasets", headers={"X-DOMO-Developer-Token": token}).status_code
        == 401
    )
    failures = [
        e
        for e in audit(server)
        if e["eventText"] == "Logged in (failed)" and e["objectType"] == "ACCESS_TOKEN"
    ]
    assert failures and failures[0]["additionalComment"] == "unknown developer token"
    assert all(token not in str(e) for e in audit(server))


def test_token_issue_and_revoke_are_audited(server: RunningServer):
    person = new_person(server)
    with person.client(server) as client:
        issued = client.post(TOKENS, json={"name": "audited", "expires": in_a_day()}).json()
        client.delete(f"{TOKENS}/{issued['id']}")
    texts = {e["eventText"] for e in audit(server, user=person.id) if e["objectId"] == str(issued["id"])}
    assert texts == {"Generated access token", "Revoked access token"}


def test_the_audit_log_is_for_admins_with_the_audit_scope(server: RunningServer):
    person = new_person(server)
    with person.client(server) as client:
        assert client.get("/v1/audit").status_code == 403
    without = httpx.get(
        f"{server.base_url}/v1/audit", headers={"Authorization": f"bearer {server.oauth_token('data')}"}
    )
    assert without.status_code == 403
    scoped = httpx.get(
        f"{server.base_url}/v1/audit", headers={"Authorization": f"bearer {server.oauth_token('audit')}"}
    )
    assert scoped.status_code == 200


def test_audit_filters_by_time_user_limit_and_offset(server: RunningServer):
    person = new_person(server, role="Editor")
    before = int(time.time() * 1000) - 1
    with person.client(server) as client:
        first, second = new_dataset(client), new_dataset(client)
    after = int(time.time() * 1000) + 1
    mine = audit(server, user=person.id, start=before, end=after)
    assert [e["objectId"] for e in mine if e["eventText"] == "Created DataSet"] == [second, first]
    assert audit(server, user=person.id, start=after + 60_000) == []
    assert len(audit(server, limit=1)) == 1
    assert audit(server, user=person.id, start=before, end=after, limit=1, offset=1)[0] == mine[1]
    with server.client() as admin:
        assert len(admin.get("/v1/audit").json()) <= 50
        assert admin.get("/v1/audit", params={"start": "yesterday"}).status_code == 400
        assert admin.get("/v1/audit", params={"user": "bob"}).status_code == 400
