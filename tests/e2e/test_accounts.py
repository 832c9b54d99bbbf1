"""Accounts (a connector's credentials): pydomo's ``domo.accounts``, the product API's reads, sharing,
and credentials that never leave the server in clear (responses, log, catalog)."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from tests.e2e.test_sharing import new_person
from tests.e2e.test_tokens_and_audit import audit
from tests.support.server import RunningServer

MASK = "********"
KEYS = {"id", "accountId", "name", "displayName", "userId", "type", "dataProviderType", "valid"}
PRODUCT_KEYS = KEYS | {
    "createdAt",
    "createdBy",
    "modifiedAt",
    "modifiedBy",
    "credentialsType",
    "configurations",
}

# Every credential value any test here sends: none may appear in a response or in the server's log.
SENT_SECRETS: list[str] = []


def secret() -> str:
    value = "pw-" + uuid.uuid4().hex
    SENT_SECRETS.append(value)
    return value


class Recorder:
    """Keeps every response body an HTTP client received, to scan for credentials."""

    bodies: list[str] = []

    @classmethod
    def hook(cls, response: httpx.Response) -> None:
        response.read()
        cls.bodies.append(response.text)


def client(server: RunningServer, token: str | None = None) -> httpx.Client:
    return httpx.Client(
        base_url=server.base_url,
        headers={"X-DOMO-Developer-Token": token or server.token},
        timeout=120,
        event_hooks={"response": [Recorder.hook]},
    )


@pytest.fixture
def admin(server: RunningServer) -> Iterator[httpx.Client]:
    with client(server) as c:
        yield c


@pytest.fixture
def domo(server: RunningServer):  # type: ignore[no-untyped-def]
    """pydomo with the ``account`` scope its AccountClient needs."""
    from pydomo import Domo

    return Domo(
        server.client_id,
        server.client_secret,
        api_host=server.host,
        use_https=False,
        scope=["data", "user", "account"],
        request_timeout=120,
    )


def new_account(c: httpx.Client, **properties: str) -> dict[str, Any]:
    body = {
        "name": "acct-" + uuid.uuid4().hex[:8],
        "valid": True,
        "type": {"id": "postgresql", "properties": properties},
    }
    created = c.post("/v1/accounts", json=body)
    assert created.status_code == 201, created.text
    return created.json()


def run_cli(server: RunningServer, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    if server.catalog_url:
        env["DATAGROVE_CATALOG_URL"] = server.catalog_url
    return subprocess.run(
        [sys.executable, "-m", "datagrove.cli", *args, "--data-dir", str(server.data_dir)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def stored_credentials(server: RunningServer, account_id: str) -> str | None:
    """The ``credentials`` column of the account's catalog row, read directly."""
    engine = sa.create_engine(server.catalog_url or f"sqlite:///{server.data_dir / 'catalog.db'}")
    try:
        with engine.connect() as db:
            return db.execute(
                sa.text("SELECT credentials FROM dg_accounts WHERE id = :i"), {"i": int(account_id)}
            ).scalar_one()
    finally:
        engine.dispose()


# --- pydomo ------------------------------------------------------------------------------------


def test_pydomo_creates_gets_lists_updates_and_deletes_an_account(domo, unique):
    password = secret()
    created = domo.accounts.create(
        name=f"A {unique}",
        valid=True,
        type={"id": "domo-csv", "properties": {"password": password, "user": "bob"}},
    )
    account_id = created["id"]
    assert isinstance(account_id, str) and account_id.isdigit()
    assert created["name"] == f"A {unique}" and created["valid"] is True
    assert created["type"] == {"id": "domo-csv", "properties": {"password": MASK, "user": MASK}}

    assert domo.accounts.get(account_id) == created
    assert account_id in {a["id"] for a in domo.accounts.list()}

    updated = domo.accounts.update(account_id, name=f"A2 {unique}")  # pydomo takes only 202
    assert updated["name"] == f"A2 {unique}"
    assert updated["type"]["properties"] == {"password": MASK, "user": MASK}
    assert domo.accounts.get(account_id)["name"] == f"A2 {unique}"

    domo.accounts.delete(account_id)
    with pytest.raises(Exception, match="404"):
        domo.accounts.get(account_id)


def test_list_pages_with_limit_and_offset_and_sorts_by_name(admin: httpx.Client):
    tag = uuid.uuid4().hex[:6]
    ids = [
        admin.post("/v1/accounts", json={"name": f"{tag}-{letter}", "type": {"id": "http"}}).json()["id"]
        for letter in "cab"
    ]
    everything = admin.get("/v1/accounts", params={"limit": 500, "sort": "name"}).json()
    mine = [a["name"] for a in everything if a["name"].startswith(tag)]
    assert mine == [f"{tag}-a", f"{tag}-b", f"{tag}-c"]
    pages = [
        admin.get("/v1/accounts/", params={"limit": 1, "offset": n}).json()
        for n in range(len(everything) + 1)
    ]
    assert all(len(page) == 1 for page in pages[:-1]) and pages[-1] == []
    assert {page[0]["id"] for page in pages[:-1]} >= set(ids)


# --- the product API ---------------------------------------------------------------------------


def test_product_reads_show_the_product_account_shape_with_masked_configurations(admin: httpx.Client):
    created = new_account(admin, password=secret(), host="db.example.com")
    account_id = int(created["id"])
    one = admin.get(f"/api/data/v1/accounts/{account_id}")
    assert one.status_code == 200, one.text
    body = one.json()
    assert set(body) == PRODUCT_KEYS
    assert body["id"] == body["accountId"] == account_id
    assert body["name"] == body["displayName"] == created["name"]
    assert body["type"] == body["dataProviderType"] == "postgresql"
    assert body["credentialsType"] == "fields"
    assert body["configurations"] == {"host": MASK, "password": MASK}
    assert body["createdAt"] > 1_600_000_000_000  # epoch milliseconds
    listed = admin.get("/api/data/v1/accounts", params={"limit": 500}).json()
    assert account_id in {a["id"] for a in listed}


# --- sharing -----------------------------------------------------------------------------------


def test_a_shared_account_is_readable_by_the_grantee_and_404_to_everyone_else(server: RunningServer):
    owner, grantee, stranger = (new_person(server, role) for role in ("Editor", "Participant", "Participant"))
    with (
        client(server, owner.token) as o,
        client(server, grantee.token) as g,
        client(server, stranger.token) as s,
    ):
        account = new_account(o, password=secret())
        path = f"/v1/accounts/{account['id']}"
        assert g.get(path).status_code == 404
        shared = o.post(f"{path}/shares", json={"user": {"id": grantee.id}})
        assert shared.status_code == 200, shared.text
        assert shared.json()["id"] == account["id"]

        assert g.get(path).json()["type"]["properties"] == {"password": MASK}
        assert g.get(f"/api/data/v1/accounts/{account['id']}").status_code == 200
        assert account["id"] in {a["id"] for a in g.get("/v1/accounts").json()}
        # CAN_VIEW: see and use, not change, delete or share.
        assert g.patch(path, json={"name": "taken"}).status_code == 403
        assert g.delete(path).status_code == 403
        assert g.post(f"{path}/shares", json={"user": {"id": stranger.id}}).status_code == 403

        for answer in (
            s.get(path),
            s.patch(path, json={"name": "x"}),
            s.delete(path),
            s.get(f"/api/data/v2/accounts/share/{account['id']}"),
        ):
            assert answer.status_code == 404, answer.text
        assert account["id"] not in {a["id"] for a in s.get("/v1/accounts").json()}

        access = o.get(f"/api/data/v2/accounts/share/{account['id']}").json()
        assert access == {
            "list": [
                {"type": "USER", "id": str(owner.id), "accessLevel": "OWNER", "name": owner.name},
                {"type": "USER", "id": str(grantee.id), "accessLevel": "CAN_VIEW", "name": grantee.name},
            ],
            "totalUserCount": 2,
        }


def test_a_group_granted_can_edit_lets_its_members_change_the_account(server: RunningServer):
    owner, member = new_person(server, "Editor"), new_person(server, "Participant")
    with server.client() as root:
        group = root.post("/v1/groups", json={"name": "g-" + uuid.uuid4().hex[:8]}).json()
        assert root.put(f"/v1/groups/{group['id']}/users/{member.id}").status_code == 204
    with client(server, owner.token) as o, client(server, member.token) as m:
        account = new_account(o, password=secret())
        path = f"/v1/accounts/{account['id']}"
        assert m.get(path).status_code == 404
        shared = o.post(f"{path}/shares", json={"group": {"id": group["id"]}, "accessLevel": "CAN_EDIT"})
        assert shared.status_code == 200, shared.text
        changed = m.patch(path, json={"name": "renamed by a member"})
        assert changed.status_code == 202 and changed.json()["name"] == "renamed by a member"
        assert m.delete(path).status_code == 403  # deleting is the owner's
        entry = {"type": "GROUP", "id": str(group["id"]), "accessLevel": "CAN_EDIT", "name": group["name"]}
        assert entry in o.get(f"/api/data/v2/accounts/share/{account['id']}").json()["list"]


def test_sharing_with_an_unknown_user_or_a_bad_body_is_400(admin: httpx.Client):
    path = f"/v1/accounts/{new_account(admin)['id']}/shares"
    assert admin.post(path, json={"user": {"id": 2**62}}).status_code == 400
    assert admin.post(path, json={"someone": {"id": 1}}).status_code == 400
    assert admin.post(path, json={"user": {"id": 1}, "accessLevel": "OWNER"}).status_code == 400


def test_a_participant_may_not_create_an_account(server: RunningServer):
    with client(server, new_person(server, "Participant").token) as p:
        refused = p.post("/v1/accounts", json={"name": "x", "type": {"id": "http"}})
    assert refused.status_code == 403, refused.text


def test_a_token_without_the_account_scope_gets_403(server: RunningServer, admin: httpx.Client):
    account_id = new_account(admin)["id"]
    headers = {"Authorization": f"bearer {server.oauth_token('data user')}"}
    with httpx.Client(base_url=server.base_url, headers=headers) as scoped:
        assert scoped.get("/v1/accounts").status_code == 403
        assert scoped.get(f"/v1/accounts/{account_id}").status_code == 403
        assert scoped.post("/v1/accounts", json={"name": "x", "type": {"id": "http"}}).status_code == 403


# --- updates -----------------------------------------------------------------------------------


def test_patch_merges_keeps_masked_values_and_removes_nulls(admin: httpx.Client):
    account = new_account(admin, password=secret(), user="bob", host="h")
    path = f"/v1/accounts/{account['id']}"
    sealed = admin.patch(
        path,
        json={
            "valid": False,
            "type": {"id": "postgresql", "properties": {"password": MASK, "host": None, "port": 5432}},
        },
    )
    assert sealed.status_code == 202, sealed.text
    assert sealed.json()["valid"] is False
    assert sealed.json()["type"]["properties"] == {"password": MASK, "port": MASK, "user": MASK}
    # The round trip a client does (get, change, send it all back) keeps every credential.
    whole = admin.get(path).json()
    whole["name"] = "round trip"
    assert admin.patch(path, json=whole).json()["type"]["properties"] == whole["type"]["properties"]


def test_patch_refuses_another_type_and_a_mask_for_a_credential_never_stored(admin: httpx.Client):
    path = f"/v1/accounts/{new_account(admin)['id']}"
    changed = admin.patch(path, json={"type": {"id": "mysql"}})
    assert changed.status_code == 400 and "type" in changed.json()["message"]
    masked = admin.patch(path, json={"properties": {"token": MASK}})
    assert masked.status_code == 400 and "token" in masked.json()["message"]


# --- bad input -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({"type": {"id": "http"}}, "name"),
        ({"name": "", "type": {"id": "http"}}, "name"),
        ({"name": "A"}, "type"),
        ({"name": "A", "type": {"properties": {}}}, "type"),
        ({"name": "A", "type": {"id": "http", "properties": "password=x"}}, "type.properties"),
        ({"name": "A", "type": {"id": "http"}, "credentials": ["x"]}, "credentials"),
        ({"name": "A", "type": {"id": "http"}, "valid": "maybe"}, "valid"),
    ],
)
def test_bad_input_is_400_naming_the_field(admin: httpx.Client, body: dict, named: str):
    answer = admin.post("/v1/accounts", json=body)
    assert answer.status_code == 400, answer.text
    assert named in answer.json()["message"]


def test_an_unknown_or_malformed_id_is_404(admin: httpx.Client):
    for path in ("/v1/accounts/999999999", "/v1/accounts/abc", "/api/data/v1/accounts/99999999999999999999"):
        assert admin.get(path).status_code == 404


# --- credentials at rest, in the log, in the activity log ---------------------------------------------


def test_the_catalog_holds_no_credential_in_clear_and_the_key_file_is_0600(
    server: RunningServer, admin: httpx.Client
):
    password = secret()
    account = new_account(admin, password=password)
    stored = stored_credentials(server, account["id"])
    assert stored and password not in stored and "password" not in stored
    key = server.data_dir / "secret.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600


def test_create_update_share_and_delete_are_in_the_activity_log_without_credentials(
    server: RunningServer, admin: httpx.Client
):
    password = secret()
    other = new_person(server)
    account = new_account(admin, password=password)
    path = f"/v1/accounts/{account['id']}"
    assert admin.patch(path, json={"properties": {"password": secret()}}).status_code == 202
    assert admin.post(f"{path}/shares", json={"user": {"id": other.id}}).status_code == 200
    assert admin.delete(path).status_code == 204
    entries = [
        e
        for e in audit(server)
        if e.get("objectType") == "ACCOUNT" and str(e.get("objectId")) == account["id"]
    ]
    events = {e["eventText"] for e in entries}
    assert {"Created account", "Updated account", "Shared account", "Deleted account"} <= events, entries
    assert password not in json.dumps(entries)


def test_the_cli_creates_lists_and_deletes_without_echoing_credentials(server: RunningServer):
    password = secret()
    created = run_cli(
        server,
        "account",
        "create",
        "--name",
        "from cli",
        "--type",
        "mysql",
        "--credential",
        f"password={password}",
    )
    assert created.returncode == 0, created.stderr
    assert password not in created.stdout + created.stderr
    account = json.loads(created.stdout)
    assert account["type"]["properties"] == {"password": MASK}
    listed = run_cli(server, "account", "list")
    assert account["id"] in {a["id"] for a in json.loads(listed.stdout)} and password not in listed.stdout
    with client(server) as c:
        assert c.get(f"/v1/accounts/{account['id']}").json()["name"] == "from cli"
    assert run_cli(server, "account", "delete", "--account-id", account["id"]).returncode == 0


def test_zz_no_credential_ever_appears_in_a_response_or_the_server_log(server: RunningServer):
    """Runs last in this module: scans everything the tests above received and the whole log."""
    assert SENT_SECRETS, "the tests above sent credentials"
    received = "\n".join(Recorder.bodies)
    log = server.log_path.read_text(errors="replace")
    for value in SENT_SECRETS:
        assert value not in received
        assert value not in log
