"""Every route of both API families, called by every kind of actor, answers the status the
permission model says (README "Permission model").

The matrix is data: one row per route. ``test_every_route_has_a_row`` fails when a route is added
without one, so no endpoint can ship without its permission being decided and tested.
"""

from __future__ import annotations

import itertools
import tempfile
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from datagrove.api.iceberg_rest.writes import WRITES as ICEBERG_WRITES
from tests.support.server import RunningServer

ACTORS = ("admin", "owner", "co_owner", "editor", "viewer", "group_member", "stranger", "no_scope")
SCHEMA = {"columns": [{"type": "STRING", "name": "region"}, {"type": "LONG", "name": "amount"}]}


@dataclass
class World:
    """Users with known relations to each dataset the matrix creates, and a credential for each."""

    server: RunningServer
    headers: dict[str, dict[str, str]]
    ids: dict[str, int]
    group_id: int

    def client(self, actor: str) -> httpx.Client:
        return httpx.Client(base_url=self.server.base_url, headers=self.headers[actor], timeout=60)


@dataclass
class Objects:
    """Fresh objects for one call: a dataset shared as the actors' names say, its stream, an
    ACTIVE execution of it, a PDP policy, a spare user, a spare group and a developer token."""

    dataset: str
    stream: int
    execution: int
    policy: int
    user: int
    group: int
    token_id: int
    account: int
    version: str  # the dataset's first version (before the import)


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> World:
    server = RunningServer(data_dir=tmp_path_factory.mktemp("matrix"), catalog_url=None).start()
    admin = {"X-DOMO-Developer-Token": server.token}
    headers = {"admin": admin}
    ids: dict[str, int] = {}
    with httpx.Client(base_url=server.base_url, headers=admin, timeout=60) as client:
        for actor in ACTORS[1:-1]:
            role = "Editor" if actor == "owner" else "Participant"
            user = client.post(
                "/v1/users",
                json={"name": actor, "email": f"{actor}-{uuid.uuid4().hex[:6]}@x.io", "role": role},
            )
            assert user.status_code == 201, user.text
            ids[actor] = user.json()["id"]
            token = client.post("/api/data/v1/accesstokens", json={"name": actor, "ownerId": ids[actor]})
            assert token.status_code in (200, 201), token.text
            headers[actor] = {"X-DOMO-Developer-Token": token.json()["token"]}
        group = client.post("/v1/groups", json={"name": f"matrix {uuid.uuid4().hex[:6]}"}).json()["id"]
        assert client.put(f"/v1/groups/{group}/users/{ids['group_member']}").status_code == 204
    # An OAuth token of the admin that carries neither 'data' nor 'user' nor 'audit'.
    headers["no_scope"] = {"Authorization": f"bearer {server.oauth_token('dashboard')}"}
    yield World(server, headers, ids, group)
    server.stop()


def fresh_objects(world: World) -> Objects:
    with world.client("owner") as owner, world.client("admin") as admin:
        stream = owner.post(
            "/v1/streams", json={"dataSet": {"name": "matrix", "schema": SCHEMA}, "updateMethod": "APPEND"}
        )
        assert stream.status_code == 201, stream.text
        dataset, sid = stream.json()["dataSet"]["id"], stream.json()["id"]
        grants = [
            {"type": "USER", "id": world.ids["co_owner"], "accessLevel": "CO_OWNER"},
            {"type": "USER", "id": world.ids["editor"], "accessLevel": "CAN_EDIT"},
            {"type": "USER", "id": world.ids["viewer"], "accessLevel": "CAN_VIEW"},
            {"type": "GROUP", "id": world.group_id, "accessLevel": "CAN_VIEW"},
        ]
        shared = owner.post(
            f"/api/data/v3/datasources/{dataset}/share", json={"permissions": grants, "sendEmail": False}
        )
        assert shared.status_code < 300, shared.text
        assert owner.put(f"/v1/datasets/{dataset}/data", content=b"east,1\n").status_code == 204
        version = owner.get(f"/v1/datasets/{dataset}/versions").json()[0]["version"]
        assert owner.put(f"/v1/datasets/{dataset}/data", content=b"east,1\nwest,2\n").status_code == 204
        execution = owner.post(f"/v1/streams/{sid}/executions").json()["id"]
        policy = owner.post(
            f"/v1/datasets/{dataset}/policies",
            json={
                "name": "east",
                "type": "user",
                "users": [world.ids["viewer"]],
                "groups": [],
                "filters": [{"column": "region", "values": ["east"], "operator": "EQUALS", "not": False}],
            },
        )
        assert policy.status_code == 201, policy.text
        spare = admin.post("/v1/users", json={"name": "spare", "email": f"s-{uuid.uuid4().hex[:8]}@x.io"})
        group = admin.post("/v1/groups", json={"name": f"spare {uuid.uuid4().hex[:8]}"}).json()["id"]
        token = admin.post("/api/data/v1/accesstokens", json={"name": "spare", "ownerId": spare.json()["id"]})
        # An account of the owner's: the editor may change it, the viewer and the group use it.
        account = owner.post(
            "/v1/accounts",
            json={"name": "matrix", "type": {"id": "http", "properties": {"bearerToken": "t"}}},
        )
        assert account.status_code == 201, account.text
        account_id = int(account.json()["id"])
        for body in (
            {"user": {"id": world.ids["editor"]}, "accessLevel": "CAN_EDIT"},
            {"user": {"id": world.ids["viewer"]}},
            {"group": {"id": world.group_id}},
        ):
            assert owner.post(f"/v1/accounts/{account_id}/shares", json=body).status_code == 200
    return Objects(
        dataset,
        sid,
        execution,
        policy.json()["id"],
        spare.json()["id"],
        group,
        token.json()["id"],
        account_id,
        version,
    )


_shared: dict[int, Objects] = {}


def shared_objects(world: World) -> Objects:
    if id(world) not in _shared:
        _shared[id(world)] = fresh_objects(world)
    return _shared[id(world)]


Request = Callable[[World, Objects, str], tuple[str, str, dict[str, Any]]]


def call(method: str, path: str, **kwargs: Any) -> Request:
    """A request template; ``{dataset}``, ``{stream}`` ... and ``{me}`` (the actor's user id) are filled in."""

    def build(world: World, objects: Objects, actor: str) -> tuple[str, str, dict[str, Any]]:
        values = {**vars(objects), "me": world.ids.get(actor, 1), "viewer": world.ids["viewer"]}
        return method, path.format(**values), kwargs

    return build


# Expected status per actor, in ACTORS order: admin, owner, co_owner, editor, viewer, group_member,
# stranger, no_scope. "view" datasets: everyone shared (viewer and group_member included) may read.
VIEW = (200, 200, 200, 200, 200, 200, 404, 403)
EDIT_204 = (204, 204, 204, 204, 403, 403, 404, 403)
EDIT_200 = (200, 200, 200, 200, 403, 403, 404, 403)
OWNERS_204 = (204, 204, 204, 403, 403, 403, 404, 403)
OWNERS_200 = (200, 200, 200, 403, 403, 403, 404, 403)
CREATORS_201 = (201, 201, 403, 403, 403, 403, 403, 403)
ANYONE_200 = (200, 200, 200, 200, 200, 200, 200, 403)
ADMIN_201 = (201, 403, 403, 403, 403, 403, 403, 403)
ADMIN_200 = (200, 403, 403, 403, 403, 403, 403, 403)
ADMIN_204 = (204, 403, 403, 403, 403, 403, 403, 403)

CSV = {"content": b"north,3\n", "headers": {"Content-Type": "text/csv"}}
NEW_DATASET = {"json": {"name": "new", "schema": SCHEMA}}
SQL = {"json": {"sql": "SELECT COUNT(*) FROM table"}}

MATRIX: dict[tuple[str, str], tuple[Request, tuple[int, ...]]] = {
    # --- public API: datasets -------------------------------------------------------------------
    ("POST", "/v1/datasets"): (call("POST", "/v1/datasets", **NEW_DATASET), CREATORS_201),
    ("GET", "/v1/datasets"): (call("GET", "/v1/datasets"), ANYONE_200),
    ("GET", "/v1/datasets/{dataset_id}"): (call("GET", "/v1/datasets/{dataset}"), VIEW),
    ("PUT", "/v1/datasets/{dataset_id}"): (
        call("PUT", "/v1/datasets/{dataset}", json={"description": "x"}),
        EDIT_200,
    ),
    ("DELETE", "/v1/datasets/{dataset_id}"): (call("DELETE", "/v1/datasets/{dataset}"), OWNERS_204),
    ("PUT", "/v1/datasets/{dataset_id}/data"): (call("PUT", "/v1/datasets/{dataset}/data", **CSV), EDIT_204),
    ("GET", "/v1/datasets/{dataset_id}/data"): (call("GET", "/v1/datasets/{dataset}/data"), VIEW),
    ("POST", "/v1/datasets/query/execute/{dataset_id}"): (
        call("POST", "/v1/datasets/query/execute/{dataset}", **SQL),
        VIEW,
    ),
    # --- public API: versions (beyond Domo): reading them is viewing, restoring is for co-owners ----
    ("GET", "/v1/datasets/{dataset_id}/versions"): (call("GET", "/v1/datasets/{dataset}/versions"), VIEW),
    ("POST", "/v1/datasets/{dataset_id}/versions/{version_id}/restore"): (
        call("POST", "/v1/datasets/{dataset}/versions/{version}/restore"),
        OWNERS_200,
    ),
    ("POST", "/v1/datasets/{dataset_id}/policies"): (
        call(
            "POST",
            "/v1/datasets/{dataset}/policies",
            json={"name": "p", "type": "user", "users": [], "filters": []},
        ),
        (201, 201, 201, 403, 403, 403, 404, 403),
    ),
    ("GET", "/v1/datasets/{dataset_id}/policies"): (
        call("GET", "/v1/datasets/{dataset}/policies"),
        OWNERS_200,
    ),
    ("GET", "/v1/datasets/{dataset_id}/policies/{policy_id}"): (
        call("GET", "/v1/datasets/{dataset}/policies/{policy}"),
        OWNERS_200,
    ),
    ("PUT", "/v1/datasets/{dataset_id}/policies/{policy_id}"): (
        call("PUT", "/v1/datasets/{dataset}/policies/{policy}", json={"name": "p2"}),
        OWNERS_200,
    ),
    ("DELETE", "/v1/datasets/{dataset_id}/policies/{policy_id}"): (
        call("DELETE", "/v1/datasets/{dataset}/policies/{policy}"),
        OWNERS_204,
    ),
    # --- public API: streams --------------------------------------------------------------------
    ("POST", "/v1/streams"): (
        call("POST", "/v1/streams", json={"dataSet": NEW_DATASET["json"]}),
        CREATORS_201,
    ),
    ("GET", "/v1/streams"): (call("GET", "/v1/streams"), ANYONE_200),
    ("GET", "/v1/streams/search"): (
        call("GET", "/v1/streams/search", params={"q": "dataSource.id:{dataset}"}),
        ANYONE_200,
    ),
    ("GET", "/v1/streams/{stream_id}"): (call("GET", "/v1/streams/{stream}"), VIEW),
    ("PATCH", "/v1/streams/{stream_id}"): (
        call("PATCH", "/v1/streams/{stream}", json={"updateMethod": "REPLACE"}),
        EDIT_200,
    ),
    ("DELETE", "/v1/streams/{stream_id}"): (call("DELETE", "/v1/streams/{stream}"), EDIT_204),
    ("POST", "/v1/streams/{stream_id}/executions"): (
        call("POST", "/v1/streams/{stream}/executions"),
        EDIT_200,
    ),
    ("GET", "/v1/streams/{stream_id}/executions"): (call("GET", "/v1/streams/{stream}/executions"), VIEW),
    ("PUT", "/v1/streams/{stream_id}/executions/abort"): (
        call("PUT", "/v1/streams/{stream}/executions/abort"),
        EDIT_204,
    ),
    ("GET", "/v1/streams/{stream_id}/executions/{execution_id}"): (
        call("GET", "/v1/streams/{stream}/executions/{execution}"),
        VIEW,
    ),
    ("PUT", "/v1/streams/{stream_id}/executions/{execution_id}/part/{part_id}"): (
        call("PUT", "/v1/streams/{stream}/executions/{execution}/part/1", **CSV),
        EDIT_200,
    ),
    ("PUT", "/v1/streams/{stream_id}/executions/{execution_id}/commit"): (
        call("PUT", "/v1/streams/{stream}/executions/{execution}/commit"),
        EDIT_200,
    ),
    ("PUT", "/v1/streams/{stream_id}/executions/{execution_id}/abort"): (
        call("PUT", "/v1/streams/{stream}/executions/{execution}/abort"),
        EDIT_200,
    ),
    # --- public API: users, groups, activity log ------------------------------------------------
    ("POST", "/v1/users"): (
        call("POST", "/v1/users", json={"name": "n", "email": "{dataset}@x.io"}),
        ADMIN_201,
    ),
    ("GET", "/v1/users"): (call("GET", "/v1/users"), ANYONE_200),
    ("GET", "/v1/users/{user_id}"): (call("GET", "/v1/users/{user}"), ANYONE_200),
    ("PUT", "/v1/users/{user_id}"): (call("PUT", "/v1/users/{user}", json={"name": "renamed"}), ADMIN_200),
    ("DELETE", "/v1/users/{user_id}"): (call("DELETE", "/v1/users/{user}"), ADMIN_204),
    ("POST", "/v1/groups"): (call("POST", "/v1/groups", json={"name": "g {dataset}"}), ADMIN_201),
    ("GET", "/v1/groups"): (call("GET", "/v1/groups"), ANYONE_200),
    ("GET", "/v1/groups/{group_id}"): (call("GET", "/v1/groups/{group}"), ANYONE_200),
    ("PUT", "/v1/groups/{group_id}"): (
        call("PUT", "/v1/groups/{group}", json={"name": "g2 {dataset}"}),
        ADMIN_200,
    ),
    ("DELETE", "/v1/groups/{group_id}"): (call("DELETE", "/v1/groups/{group}"), ADMIN_204),
    ("GET", "/v1/groups/{group_id}/users"): (call("GET", "/v1/groups/{group}/users"), ANYONE_200),
    ("PUT", "/v1/groups/{group_id}/users/{user_id}"): (
        call("PUT", "/v1/groups/{group}/users/{user}"),
        ADMIN_204,
    ),
    ("DELETE", "/v1/groups/{group_id}/users/{user_id}"): (
        call("DELETE", "/v1/groups/{group}/users/{user}"),
        ADMIN_204,
    ),
    ("GET", "/v1/audit"): (call("GET", "/v1/audit"), ADMIN_200),
    # --- product API ----------------------------------------------------------------------------
    ("GET", "/api/data/v3/datasources/{dataset_id}"): (
        call("GET", "/api/data/v3/datasources/{dataset}"),
        VIEW,
    ),
    ("GET", "/api/data/v3/datasources/{dataset_id}/permissions"): (
        call("GET", "/api/data/v3/datasources/{dataset}/permissions"),
        VIEW,
    ),
    ("DELETE", "/api/data/v3/datasources/{dataset_id}/permissions/{kind}/{principal_id}"): (
        call("DELETE", "/api/data/v3/datasources/{dataset}/permissions/USER/{viewer}"),
        OWNERS_200,
    ),
    ("POST", "/api/data/v3/datasources/{dataset_id}/share"): (
        call(
            "POST",
            "/api/data/v3/datasources/{dataset}/share",
            json={
                "permissions": [{"type": "USER", "id": "{user}", "accessLevel": "CAN_VIEW"}],
                "sendEmail": False,
            },
        ),
        (200, 200, 200, 403, 403, 403, 404, 403),
    ),
    ("POST", "/api/data/v3/datasources/{dataset_id}/uploads"): (
        call("POST", "/api/data/v3/datasources/{dataset}/uploads", json={"values": "south,4"}),
        EDIT_200,
    ),
    # An upload session's id is the id of an execution of the dataset's stream.
    ("PUT", "/api/data/v3/datasources/{dataset_id}/uploads/{upload_id}/parts/{part_id}"): (
        call("PUT", "/api/data/v3/datasources/{dataset}/uploads/{execution}/parts/1", **CSV),
        EDIT_200,
    ),
    ("PUT", "/api/data/v3/datasources/{dataset_id}/uploads/{upload_id}/commit"): (
        call(
            "PUT", "/api/data/v3/datasources/{dataset}/uploads/{execution}/commit", json={"action": "APPEND"}
        ),
        EDIT_200,
    ),
    ("PUT", "/api/data/v3/datasources/{dataset_id}/uploads/{upload_id}/abort"): (
        call("PUT", "/api/data/v3/datasources/{dataset}/uploads/{execution}/abort"),
        EDIT_200,
    ),
    ("DELETE", "/api/data/v3/datasources/{dataset_id}"): (
        call("DELETE", "/api/data/v3/datasources/{dataset}", params={"deleteMethod": "hard"}),
        OWNERS_200,
    ),
    ("PUT", "/api/data/v3/datasources/{dataset_id}/permissions"): (
        call(
            "PUT",
            "/api/data/v3/datasources/{dataset}/permissions",
            json={"type": "USER", "id": "{user}", "accessLevel": "CAN_VIEW"},
        ),
        (200, 200, 200, 403, 403, 403, 404, 403),
    ),
    ("POST", "/api/data/v2/datasources"): (
        call("POST", "/api/data/v2/datasources", json={"dataSourceName": "v2", "schema": SCHEMA}),
        (200, 200, 403, 403, 403, 403, 403, 403),
    ),
    ("POST", "/api/query/v1/execute/{dataset_id}"): (
        call("POST", "/api/query/v1/execute/{dataset}", **SQL),
        VIEW,
    ),
    ("GET", "/api/data/v1/streams/{stream_id}"): (call("GET", "/api/data/v1/streams/{stream}"), VIEW),
    ("GET", "/api/data/v1/streams"): (call("GET", "/api/data/v1/streams"), ANYONE_200),
    ("PUT", "/api/data/v1/streams/{stream_id}"): (
        call("PUT", "/api/data/v1/streams/{stream}", json={"updateMethod": "REPLACE"}),
        EDIT_200,
    ),
    ("GET", "/api/data/v3/datasources/{dataset_id}/permissions/currentUser"): (
        call("GET", "/api/data/v3/datasources/{dataset}/permissions/currentUser"),
        VIEW,
    ),
    ("POST", "/api/data/v1/streams"): (
        call("POST", "/api/data/v1/streams", json={"dataSource": {"name": "connector"}}),
        CREATORS_201,
    ),
    ("POST", "/api/data/v1/streams/{stream_id}/executions"): (
        call("POST", "/api/data/v1/streams/{stream}/executions", json={"action": "Manual"}),
        EDIT_200,
    ),
    ("GET", "/api/data/v1/streams/{stream_id}/executions/{execution_id}"): (
        call("GET", "/api/data/v1/streams/{stream}/executions/{execution}"),
        VIEW,
    ),
    ("PUT", "/api/data/v1/streams/{stream_id}/executions/{execution_id}/part/{part_id}"): (
        call("PUT", "/api/data/v1/streams/{stream}/executions/{execution}/part/1", **CSV),
        EDIT_200,
    ),
    ("PUT", "/api/data/v1/streams/{stream_id}/executions/{execution_id}/commit"): (
        call("PUT", "/api/data/v1/streams/{stream}/executions/{execution}/commit"),
        EDIT_200,
    ),
    ("GET", "/api/data/v1/streams/{stream_id}/history/aggregate"): (
        call("GET", "/api/data/v1/streams/{stream}/history/aggregate"),
        VIEW,
    ),
    ("POST", "/api/data/v1/accesstokens"): (
        call("POST", "/api/data/v1/accesstokens", json={"name": "mine", "ownerId": "{me}"}),
        ANYONE_200,
    ),
    ("GET", "/api/data/v1/accesstokens"): (call("GET", "/api/data/v1/accesstokens"), ANYONE_200),
    ("DELETE", "/api/data/v1/accesstokens/{token_id}"): (
        call("DELETE", "/api/data/v1/accesstokens/{token_id}"),
        (200, 404, 404, 404, 404, 404, 404, 403),
    ),
    # --- Iceberg REST catalog (read-only; tests/e2e/test_iceberg_rest.py): reading a table's files
    # is viewing it; every write of the protocol is refused to everyone signed in ------------------
    **{
        ("GET", "/iceberg" + path): (call("GET", "/iceberg" + path.format(namespace="datagrove")), ANYONE_200)
        for path in ("/v1/config", "/v1/namespaces", "/v1/namespaces/{namespace}")
        + ("/v1/namespaces/{namespace}/tables", "/v1/namespaces/{namespace}/views")
    },
    ("GET", "/iceberg/v1/namespaces/{namespace}/tables/{table}"): (
        call("GET", "/iceberg/v1/namespaces/datagrove/tables/{dataset}"),
        VIEW,
    ),
    ("POST", "/iceberg/v1/namespaces/{namespace}/tables/{table}/metrics"): (
        call("POST", "/iceberg/v1/namespaces/datagrove/tables/{dataset}/metrics", json={}),
        (204, 204, 204, 204, 204, 204, 204, 403),
    ),
    **{
        (method, "/iceberg" + path): (
            call(
                method,
                "/iceberg"
                + path.replace("{namespace}", "datagrove")
                .replace("{table}", "{dataset}")
                .replace("{view}", "v"),
                json={},
            ),
            (405,) * len(ACTORS),
        )
        for method, path, _ in ICEBERG_WRITES
    },
}

# Accounts have their own grants (docs/accounts.md): owner and admins everything, CAN_EDIT changes,
# CAN_VIEW (the viewer and the group) sees and uses; the co-owner of the dataset has no grant on it.
ACCOUNT_VIEW = (200, 200, 404, 200, 200, 200, 404, 403)
MATRIX.update(
    {
        ("POST", "/v1/accounts"): (
            call("POST", "/v1/accounts", json={"name": "a", "type": {"id": "http", "properties": {}}}),
            CREATORS_201,
        ),
        ("GET", "/v1/accounts"): (call("GET", "/v1/accounts"), ANYONE_200),
        ("GET", "/v1/accounts/{id}"): (call("GET", "/v1/accounts/{account}"), ACCOUNT_VIEW),
        ("PATCH", "/v1/accounts/{id}"): (
            call("PATCH", "/v1/accounts/{account}", json={"name": "renamed"}),
            (202, 202, 404, 202, 403, 403, 404, 403),
        ),
        ("DELETE", "/v1/accounts/{id}"): (
            call("DELETE", "/v1/accounts/{account}"),
            (204, 204, 404, 403, 403, 403, 404, 403),
        ),
        ("POST", "/v1/accounts/{id}/shares"): (
            call("POST", "/v1/accounts/{account}/shares", json={"user": {"id": "{user}"}}),
            (200, 200, 404, 403, 403, 403, 404, 403),
        ),
        ("GET", "/api/data/v1/accounts"): (call("GET", "/api/data/v1/accounts"), ANYONE_200),
        ("GET", "/api/data/v1/accounts/{id}"): (call("GET", "/api/data/v1/accounts/{account}"), ACCOUNT_VIEW),
        ("GET", "/api/data/v2/accounts/share/{id}"): (
            call("GET", "/api/data/v2/accounts/share/{account}"),
            ACCOUNT_VIEW,
        ),
        ("PUT", "/api/data/v1/streams/{stream_id}/executions/{execution_id}/abort"): (
            call("PUT", "/api/data/v1/streams/{stream}/executions/{execution}/abort"),
            EDIT_200,
        ),
    }
)

# Routes that answer without credentials, by design.
OPEN = {
    ("GET", "/health"),
    # Operations: /metrics has its own access rule (tests/e2e/test_metrics.py), /ready says no more.
    ("GET", "/metrics"),
    ("GET", "/ready"),
    ("GET", "/oauth/token"),
    ("POST", "/oauth/token"),
    ("POST", "/iceberg/v1/oauth/tokens"),  # the Iceberg catalog's own token endpoint
    # The API description holds no data (tests/e2e/test_openapi.py).
    ("GET", "/openapi.json"),
    ("GET", "/docs"),
    ("GET", "/docs/assets/{name}"),
}


def served_routes() -> set[tuple[str, str]]:
    """(method, path) of every route the app serves, trailing-slash twins folded together."""
    from datagrove.app import create_app
    from datagrove.settings import load
    from datagrove.web.errors import is_web_path

    app = create_app(load(data_dir=tempfile.mkdtemp()))
    found = set()
    for included in app.routes:
        router = getattr(included, "original_router", None)
        for route in router.routes if router else [included]:
            # The web pages have their own matrix: tests/e2e/test_web_security.py.
            if is_web_path(getattr(route, "path", "")):
                continue
            for method in set(getattr(route, "methods", ())) - {"HEAD"}:
                found.add((method, route.path.rstrip("/") or "/"))
    return found


def test_every_route_has_a_row():
    missing = sorted(served_routes() - set(MATRIX) - OPEN)
    assert missing == [], "routes without a permission-matrix row: " + ", ".join(" ".join(r) for r in missing)
    stale = sorted(set(MATRIX) - served_routes())
    assert stale == [], "matrix rows for routes that do not exist: " + ", ".join(" ".join(r) for r in stale)


def _fill(value: Any, values: dict[str, Any]) -> Any:
    if isinstance(value, str):
        filled = value.format(**values)
        return int(filled) if value.startswith("{") and filled.isdigit() else filled
    if isinstance(value, dict):
        return {k: _fill(v, values) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, values) for v in value]
    return value


@pytest.mark.parametrize(
    ("route", "actor"),
    list(itertools.product(sorted(MATRIX), ACTORS)),
    ids=lambda value: " ".join(value) if isinstance(value, tuple) else value,
)
def test_each_actor_gets_the_status_the_model_says(world, route, actor):
    request, statuses = MATRIX[route]
    expected = statuses[ACTORS.index(actor)]
    # Reads share one set of objects; anything that may change state gets its own.
    objects = shared_objects(world) if route[0] == "GET" else fresh_objects(world)
    method, url, kwargs = request(world, objects, actor)
    values = {**vars(objects), "me": world.ids.get(actor, 1), "viewer": world.ids["viewer"]}
    kwargs = {
        key: _fill(value, values) if key in ("json", "params") else value for key, value in kwargs.items()
    }
    with world.client(actor) as client:
        response = client.request(method, url, **kwargs)
    assert response.status_code == expected, (
        f"{actor} {method} {url}: {response.status_code} {response.text[:300]}"
    )
    if response.status_code >= 400:
        body = response.json()
        if url.startswith("/iceberg/"):  # the Iceberg protocol's own error shape
            assert body["error"]["code"] == response.status_code
        else:
            assert body["status"] == response.status_code  # always Domo's JSON error shape


def test_without_credentials_every_route_but_the_open_ones_is_401(world):
    objects = fresh_objects(world)
    for route, (request, _) in sorted(MATRIX.items()):
        method, url, kwargs = request(world, objects, "admin")
        response = httpx.request(method, world.server.base_url + url, timeout=30)
        assert response.status_code == 401, f"{method} {url}: {response.status_code}"
