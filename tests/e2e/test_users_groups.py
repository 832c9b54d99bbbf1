"""The User and Group APIs, driven by the unmodified pydomo SDK (and raw HTTP where other SDKs differ)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import uuid
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from pydomo import Domo

from tests.support.server import RunningServer

TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
CROWD = 510  # more than one page of 500


def cli(server: RunningServer, *args: str) -> Any:
    """Run ``datagrove <args> --data-dir <server's>`` against the running server's catalog."""
    env = dict(os.environ)
    if server.catalog_url:
        env["DATAGROVE_CATALOG_URL"] = server.catalog_url
    done = subprocess.run(
        [sys.executable, "-m", "datagrove.cli", *args, "--data-dir", str(server.data_dir)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def admin_id(server: RunningServer) -> int:
    response = httpx.post(
        f"{server.base_url}/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=(server.client_id, server.client_secret),
    )
    return int(response.json()["userId"])


def audit_actions(server: RunningServer, object_type: str, object_id: int) -> list[str]:
    """The logged actions on the object, oldest first (SQLite may reuse a deleted object's id: the
    tail belongs to the newest object)."""
    url = server.catalog_url or f"sqlite:///{server.data_dir / 'catalog.db'}"
    engine = sa.create_engine(url)
    try:
        with engine.connect() as db:
            rows = db.execute(
                sa.text("SELECT action FROM dg_audit WHERE object_type = :t AND object_id = :i ORDER BY id"),
                {"t": object_type, "i": str(object_id)},
            )
            return [row.action for row in rows]
    finally:
        engine.dispose()


@pytest.fixture
def admin(server: RunningServer):
    with server.client() as client:
        yield client


@pytest.fixture
def participant(server: RunningServer, domo, unique) -> dict[str, Any]:
    """A Participant created through the API, with an OAuth client and a developer token from the CLI."""
    user = domo.users_add(f"Pat {unique}", f"pat-{unique}@example.com", "Participant")
    client = cli(server, "client", "create", "--user-id", str(user["id"]), "--scopes", "data user")
    token = cli(server, "token", "create", "--user-id", str(user["id"]))
    return {
        **user,
        "client_id": client["client_id"],
        "client_secret": client["client_secret"],
        "token": token["token"],
    }


@pytest.fixture(scope="session")
def crowd(server: RunningServer) -> list[int]:
    """At least 120 new users, and enough users on this server for more than one page of 500."""
    tag = uuid.uuid4().hex[:8]
    with server.client() as client:
        existing = client.get("/v1/users", params={"limit": 500}).json()
        return [
            client.post(
                "/v1/users/", json={"name": f"crowd {n}", "email": f"crowd-{n}-{tag}@example.com"}
            ).json()["id"]
            for n in range(max(120, CROWD - len(existing)))
        ]


# --- users ------------------------------------------------------------------------------------


def test_users_add_answers_the_new_user_with_role_groups_and_timestamps(domo, unique):
    created = domo.users_add(f"Ada {unique}", f"ada-{unique}@example.com", "Privileged")
    assert created["id"] > 0
    assert created["name"] == f"Ada {unique}" and created["email"] == f"ada-{unique}@example.com"
    assert created["role"] == "Privileged" and created["roleId"] == 2
    assert created["groups"] == []
    assert TIMESTAMP.match(created["createdAt"]) and TIMESTAMP.match(created["updatedAt"])


def test_create_is_201_takes_roles_in_any_case_and_defaults_to_participant(admin, unique):
    java = admin.post(
        "/v1/users?sendInvite=true",
        json={"email": f"j-{unique}@example.com", "role": "admin", "name": "J", "id": 0, "createdAt": ""},
    )
    assert java.status_code == 201, java.text
    assert java.json()["role"] == "Admin" and java.json()["id"] > 0
    plain = admin.post("/v1/users/", json={"name": "P", "email": f"p-{unique}@example.com", "title": "Dr"})
    assert plain.status_code == 201 and plain.json()["role"] == "Participant"


def test_an_unknown_role_or_a_missing_email_is_400(admin, unique):
    assert (
        admin.post("/v1/users", json={"name": "X", "email": f"x-{unique}@e.com", "role": "Boss"}).status_code
        == 400
    )
    assert admin.post("/v1/users", json={"name": "X"}).status_code == 400
    assert admin.post("/v1/users", json={"name": "X", "email": "not an email"}).status_code == 400


def test_a_duplicate_email_is_409_whatever_its_case(domo, admin, unique):
    domo.users_add("First", f"dup-{unique}@example.com", "Participant")
    again = admin.post("/v1/users/", json={"name": "Second", "email": f"DUP-{unique}@Example.com"})
    assert again.status_code == 409
    assert again.json()["status"] == 409 and "already exists" in again.json()["message"]


def test_users_get_answers_one_user_and_404_for_an_unknown_id(domo, admin, unique):
    created = domo.users_add(f"Get {unique}", f"get-{unique}@example.com", "Editor")
    assert domo.users_get(created["id"]) == created
    assert admin.get(f"/v1/users/{created['id']}/").json()["email"] == created["email"]
    missing = admin.get("/v1/users/987654321")
    assert missing.status_code == 404 and missing.json()["statusReason"] == "Not Found"


def test_users_list_pages_by_500_until_an_empty_page(domo, admin, crowd):
    everyone = domo.users_list(df_output=False)
    ids = [u["id"] for u in everyone]
    assert len(ids) == len(set(ids)) >= CROWD
    assert set(crowd) <= set(ids)
    assert len(admin.get("/v1/users/", params={"limit": 500, "offset": 0}).json()) == 500
    assert len(admin.get("/v1/users", params={"limit": 1000}).json()) == 500  # clamped, not 400
    assert len(admin.get("/v1/users").json()) == 50
    assert domo.users.list(500, len(ids) + 500) == []


def test_users_update_changes_only_what_is_sent(domo, unique):
    created = domo.users_add(f"Old {unique}", f"old-{unique}@example.com", "Participant")
    updated = domo.users_update(created["id"], {"name": f"New {unique}"})
    assert updated["name"] == f"New {unique}"
    assert updated["email"] == created["email"] and updated["role"] == "Participant"
    assert domo.users_get(created["id"])["name"] == f"New {unique}"


def test_a_whole_user_round_trips_and_read_only_fields_are_ignored(admin, unique):
    created = admin.post("/v1/users", json={"name": "Whole", "email": f"w-{unique}@example.com"}).json()
    whole = {
        **created,
        "email": f"w2-{unique}@example.com",
        "role": "editor",
        "id": 1,
        "createdAt": "2000-01-01T00:00:00Z",
        "title": "ignored",
        "groups": [{"id": 1}],
    }
    response = admin.put(f"/v1/users/{created['id']}", json=whole)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["id"] == created["id"] and body["createdAt"] == created["createdAt"]
    assert body["email"] == f"w2-{unique}@example.com" and body["role"] == "Editor"


def test_update_to_a_taken_email_is_409_and_to_an_unknown_user_404(domo, admin, unique):
    a = domo.users_add("A", f"a-{unique}@example.com", "Participant")
    domo.users_add("B", f"b-{unique}@example.com", "Participant")
    assert admin.put(f"/v1/users/{a['id']}", json={"email": f"b-{unique}@example.com"}).status_code == 409
    assert admin.put("/v1/users/987654321", json={"name": "nobody"}).status_code == 404


def test_users_delete_is_204_and_the_user_is_gone(domo, admin, unique):
    created = domo.users_add("Doomed", f"doomed-{unique}@example.com", "Participant")
    assert domo.users_delete(created["id"]) is None
    assert admin.get(f"/v1/users/{created['id']}").status_code == 404
    assert admin.delete(f"/v1/users/{created['id']}").status_code == 404


def test_nobody_deletes_themself_or_changes_their_own_role(server, admin):
    me = admin_id(server)
    assert admin.delete(f"/v1/users/{me}").status_code == 400
    assert admin.put(f"/v1/users/{me}", json={"role": "Participant"}).status_code == 400
    assert admin.get(f"/v1/users/{me}").json()["role"] == "Admin"


def test_a_user_who_owns_a_dataset_is_kept_until_it_has_another_owner(server, domo, admin, unique):
    owner = domo.users_add("Owner", f"owner-{unique}@example.com", "Privileged")
    dataset = admin.post(
        "/v1/datasets",
        json={"name": f"owned {unique}", "schema": {"columns": [{"type": "STRING", "name": "a"}]}},
    ).json()
    assert admin.put(f"/v1/datasets/{dataset['id']}", json={"owner": {"id": owner["id"]}}).status_code == 200
    refused = admin.delete(f"/v1/users/{owner['id']}")
    assert refused.status_code == 409 and "owns 1 dataset" in refused.json()["message"]
    me = admin_id(server)
    assert admin.put(f"/v1/datasets/{dataset['id']}", json={"owner": {"id": me}}).status_code == 200
    assert admin.delete(f"/v1/users/{owner['id']}").status_code == 204


def test_every_user_write_is_in_the_activity_log(server, domo, unique):
    created = domo.users_add("Logged", f"logged-{unique}@example.com", "Participant")
    domo.users_update(created["id"], {"name": "Logged again"})
    domo.users_delete(created["id"])
    assert audit_actions(server, "USER", created["id"])[-3:] == ["user.create", "user.update", "user.delete"]


# --- groups -----------------------------------------------------------------------------------


def test_groups_create_coerces_the_string_active_and_answers_201(domo, admin, unique):
    created = domo.groups_create(f"G {unique}")  # sends {"name": ..., "active": "true"}
    assert created["name"] == f"G {unique}" and created["active"] is True and created["default"] is False
    assert created["memberCount"] == 0 and created["creatorId"] > 0
    assert domo.groups_get(created["id"]) == created
    java = admin.post("/v1/groups", json={"name": f"JG {unique}", "isActive": False})
    assert java.status_code == 201 and java.json()["active"] is True
    inactive = admin.post("/v1/groups/", json={"name": f"I {unique}", "active": "false", "default": True})
    assert inactive.json()["active"] is False and inactive.json()["default"] is True


def test_a_duplicate_group_name_is_409_and_an_unknown_group_404(domo, admin, unique):
    domo.groups_create(f"Twice {unique}")
    assert admin.post("/v1/groups/", json={"name": f"Twice {unique}", "active": "true"}).status_code == 409
    assert admin.get("/v1/groups/987654321").status_code == 404
    assert admin.put("/v1/groups/987654321", json={"name": "x"}).status_code == 404
    assert admin.delete("/v1/groups/987654321").status_code == 404


def test_groups_update_applies_name_active_and_default_and_ignores_member_count(domo, admin, unique):
    created = domo.groups_create(f"Before {unique}")
    updated = domo.groups.update(
        created["id"], {"name": f"After {unique}", "active": False, "default": False}
    )
    assert updated["name"] == f"After {unique}" and updated["active"] is False
    java = admin.put(
        f"/v1/groups/{created['id']}", json={"name": f"After {unique}", "active": True, "memberCount": 99}
    )
    assert java.status_code == 200 and java.json()["active"] is True and java.json()["memberCount"] == 0


def test_groups_list_pages_by_500(domo, admin, unique):
    ids = {domo.groups_create(f"L{n} {unique}")["id"] for n in range(3)}
    listed = domo.groups_list()
    assert ids <= set(listed["id"])
    assert admin.get("/v1/groups/", params={"limit": 500, "offset": 100000}).json() == []
    assert len(admin.get("/v1/groups", params={"limit": 1}).json()) == 1


def test_members_are_added_listed_as_ids_and_removed(domo, admin, unique):
    group = domo.groups_create(f"M {unique}")
    users = [domo.users_add(f"M{n}", f"m{n}-{unique}@example.com", "Participant")["id"] for n in range(3)]
    assert domo.groups_add_users(group["id"], users) == "success"
    assert domo.groups_list_users(group["id"]) == sorted(users)
    assert domo.groups_get(group["id"])["memberCount"] == 3
    assert domo.users_get(users[0])["groups"] == [{"id": group["id"], "name": f"M {unique}"}]
    domo.groups_remove_users(group["id"], users[0])
    assert domo.groups_list_users(group["id"]) == sorted(users[1:])
    assert domo.users_get(users[0])["groups"] == []


def test_adding_a_member_is_an_idempotent_204_with_an_empty_body_in_every_sdk_form(domo, admin, unique):
    group = domo.groups_create(f"Idem {unique}")
    user = domo.users_add("Idem", f"idem-{unique}@example.com", "Participant")["id"]
    url = f"/v1/groups/{group['id']}/users/{user}"
    for response in (admin.put(url, json={}), admin.put(url, content=b'""'), admin.put(url)):
        assert response.status_code == 204 and response.content == b""
    assert admin.get(f"/v1/groups/{group['id']}/users").json() == [user]
    assert admin.delete(url).status_code == 204
    assert admin.delete(url).status_code == 204  # not a member any more: still fine


def test_an_unknown_user_or_group_in_membership_is_404(domo, admin, unique):
    group = domo.groups_create(f"U {unique}")
    assert admin.put(f"/v1/groups/{group['id']}/users/987654321").status_code == 404
    assert admin.put("/v1/groups/987654321/users/1").status_code == 404
    assert admin.get("/v1/groups/987654321/users").status_code == 404


def test_members_without_paging_parameters_are_all_returned_as_java_asks(domo, admin, crowd, unique):
    group = domo.groups_create(f"Big {unique}")
    for user in crowd[:120]:
        assert admin.put(f"/v1/groups/{group['id']}/users/{user}").status_code == 204
    assert admin.get(f"/v1/groups/{group['id']}/users").json() == sorted(crowd[:120])
    assert (
        admin.get(f"/v1/groups/{group['id']}/users", params={"limit": 50, "offset": 100}).json()
        == sorted(crowd[:120])[100:]
    )
    assert domo.groups_list_users(group["id"]) == sorted(crowd[:120])


def test_groups_delete_removes_members_then_the_group(server, domo, admin, unique):
    group = domo.groups_create(f"Gone {unique}")
    user = domo.users_add("Member", f"member-{unique}@example.com", "Participant")["id"]
    domo.groups_add_users(group["id"], user)
    assert domo.groups_delete(group["id"]) is None
    assert admin.get(f"/v1/groups/{group['id']}").status_code == 404
    assert domo.users_get(user)["groups"] == []
    assert audit_actions(server, "GROUP", group["id"])[-4:] == [
        "group.create",
        "group.add_user",
        "group.remove_user",
        "group.delete",
    ]


def test_a_group_with_members_can_be_deleted_directly(domo, admin, unique):
    group = domo.groups_create(f"Direct {unique}")
    user = domo.users_add("Direct", f"direct-{unique}@example.com", "Participant")["id"]
    domo.groups_add_users(group["id"], user)
    assert admin.delete(f"/v1/groups/{group['id']}").status_code == 204
    assert domo.users_get(user)["groups"] == []


# --- who may do what --------------------------------------------------------------------------


def test_a_participant_may_read_people_but_not_change_them(server, participant, unique):
    as_participant = Domo(
        participant["client_id"],
        participant["client_secret"],
        api_host=server.host,
        use_https=False,
        scope=["data", "user"],
    )
    assert participant["id"] in {u["id"] for u in as_participant.users_list(df_output=False)}
    assert as_participant.users_get(participant["id"])["role"] == "Participant"
    with pytest.raises(Exception, match="403"):
        as_participant.users_add("Nope", f"nope-{unique}@example.com", "Admin")
    with pytest.raises(Exception, match="403"):
        as_participant.users_update(participant["id"], {"role": "Admin"})
    with pytest.raises(Exception, match="403"):
        as_participant.groups_create(f"Nope {unique}")
    developer = {"X-DOMO-Developer-Token": participant["token"]}
    assert httpx.get(f"{server.base_url}/v1/groups/", headers=developer).status_code == 200
    assert (
        httpx.delete(f"{server.base_url}/v1/users/{participant['id']}", headers=developer).status_code == 403
    )


def test_a_token_without_the_user_scope_is_403_except_for_its_own_user(server):
    headers = {"Authorization": f"bearer {server.oauth_token(scope='data')}"}
    for path in ("/v1/users", "/v1/users/", "/v1/groups/"):
        response = httpx.get(f"{server.base_url}{path}", headers=headers)
        assert response.status_code == 403 and "'user' scope" in response.json()["message"]
    me = httpx.get(f"{server.base_url}/v1/users/{admin_id(server)}", headers=headers)
    assert me.status_code == 200 and me.json()["role"] == "Admin"


def test_people_need_credentials(server):
    assert httpx.get(f"{server.base_url}/v1/users/").status_code == 401
    assert httpx.get(f"{server.base_url}/v1/groups").status_code == 401


# --- the command line -------------------------------------------------------------------------


def test_the_cli_manages_users_and_groups_through_the_same_rules(server, domo, unique):
    user = domo.users_add("Cli", f"cli-{unique}@example.com", "Participant")
    updated = cli(
        server, "user", "update", "--user-id", str(user["id"]), "--role", "Editor", "--name", "Cli 2"
    )
    assert updated["role"] == "Editor" and updated["name"] == "Cli 2"
    group = cli(server, "group", "create", "--name", f"Cli {unique}")
    assert group["active"] is True and group["memberCount"] == 0
    assert (
        cli(server, "group", "add-user", "--group-id", str(group["id"]), "--user-id", str(user["id"]))[
            "memberCount"
        ]
        == 1
    )
    assert domo.groups_list_users(group["id"]) == [user["id"]]
    newest = len(domo.users_list(df_output=False)) - 1  # the list is in id order; this user is last
    listed = {u["id"]: u for u in cli(server, "user", "list", "--offset", str(newest))}
    assert listed[user["id"]]["groups"] == [{"id": group["id"], "name": f"Cli {unique}"}]
    assert any(g["id"] == group["id"] for g in cli(server, "group", "list"))
    cli(server, "group", "remove-user", "--group-id", str(group["id"]), "--user-id", str(user["id"]))
    assert domo.groups_list_users(group["id"]) == []
    assert cli(server, "user", "delete", "--user-id", str(user["id"])) == {"deleted": user["id"]}
    assert audit_actions(server, "USER", user["id"])[-3:] == ["user.create", "user.update", "user.delete"]
