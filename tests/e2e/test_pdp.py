"""PDP: policies managed through the unmodified pydomo and over HTTP, and enforced on every read.

With ``pdpEnabled``, a viewer sees only the rows the policies naming it (or its groups) allow, in
query results and in CSV exports alike, whatever SQL it writes; a viewer named by no policy sees no
rows; owners, co-owners and admins see everything. Policy changes apply on the very next request.
"""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from dataclasses import dataclass

import httpx
import pytest

from tests.support.server import RunningServer

SCHEMA = {
    "columns": [
        {"type": "STRING", "name": "Region"},
        {"type": "LONG", "name": "Amount"},
        {"type": "DATE", "name": "Day"},
    ]
}
ROWS = "East,10,2024-01-01\nWest,20,2024-01-02\nEast,30,2024-01-03\nNorth,40,2024-01-04\n,50,2024-01-05\n"
ALL_REGIONS = ["East", "West", "East", "North", None]


def east_only(region: str = "East") -> dict:
    return {"column": "Region", "values": [region], "operator": "EQUALS", "not": False}


@dataclass
class Person:
    id: int
    client: httpx.Client


@pytest.fixture
def client(server: RunningServer):
    with server.client() as client:
        yield client


@pytest.fixture
def dataset(client, unique) -> str:
    dataset_id = client.post("/v1/datasets", json={"name": f"pdp-{unique}", "schema": SCHEMA}).json()["id"]
    assert client.put(f"/v1/datasets/{dataset_id}/data", content=ROWS.encode()).status_code == 204
    return dataset_id


@pytest.fixture
def people(server: RunningServer, client, unique):
    """Makes Participant users with their own developer token; closes their clients afterwards."""
    made: list[Person] = []

    def make(name: str) -> Person:
        user_id, token = create_person(server, client, f"{name}-{unique}")
        person = Person(
            user_id,
            httpx.Client(base_url=server.base_url, headers={"X-DOMO-Developer-Token": token}, timeout=120),
        )
        made.append(person)
        return person

    yield make
    for person in made:
        person.client.close()


def create_person(server: RunningServer, client, name: str) -> tuple[int, str]:
    """A Participant and a developer token for it: over HTTP, or with the CLI where a route is missing."""
    email = f"{name}@example.com"
    created = client.post("/v1/users", json={"name": name, "email": email, "role": "Participant"})
    if created.status_code == 404:
        user_id = cli(server, "user", "create", "--name", name, "--email", email, "--role", "Participant")[
            "id"
        ]
    else:
        assert created.status_code == 201, created.text
        user_id = created.json()["id"]
    issued = client.post("/api/data/v1/accesstokens", json={"name": "pdp", "ownerId": user_id})
    if issued.status_code == 404:
        return user_id, cli(server, "token", "create", "--user-id", str(user_id))["token"]
    assert issued.status_code == 200, issued.text
    return user_id, issued.json()["token"]


def cli(server: RunningServer, *args: str) -> dict:
    env = {**os.environ}
    if server.catalog_url:
        env["DATAGROVE_CATALOG_URL"] = server.catalog_url
    done = subprocess.run(
        [sys.executable, "-m", "datagrove.cli", *args, "--data-dir", str(server.data_dir)],
        env=env,
        capture_output=True,
        check=True,
    )
    return json.loads(done.stdout)


def share(client, dataset_id: str, user_id: int, level: str = "CAN_VIEW") -> None:
    body = {"permissions": [{"type": "USER", "id": user_id, "accessLevel": level}], "sendEmail": False}
    answer = client.post(f"/api/data/v3/datasources/{dataset_id}/share", json=body)
    assert answer.status_code == 200, answer.text


def set_pdp(client, dataset_id: str, enabled: bool) -> None:
    answer = client.put(f"/v1/datasets/{dataset_id}", json={"pdpEnabled": enabled})
    assert answer.status_code == 200, answer.text
    assert answer.json()["pdpEnabled"] is enabled


def create_policy(client, dataset_id: str, **fields) -> dict:
    body = {"name": "p", "filters": [east_only()], "type": "user", "users": [], "groups": [], **fields}
    answer = client.post(f"/v1/datasets/{dataset_id}/policies", json=body)
    assert answer.status_code == 201, answer.text
    return answer.json()


def query(client, dataset_id: str, sql: str) -> list[list]:
    answer = client.post(f"/v1/datasets/query/execute/{dataset_id}", json={"sql": sql})
    assert answer.status_code == 200, answer.text
    return answer.json()["rows"]


def regions(client, dataset_id: str) -> list:
    return [row[0] for row in query(client, dataset_id, "SELECT Region FROM table ORDER BY Amount")]


def exported(client, dataset_id: str) -> list[str]:
    """The CSV export's records, each joined with commas again."""
    answer = client.get(f"/v1/datasets/{dataset_id}/data", params={"includeHeader": "true"})
    assert answer.status_code == 200, answer.text
    return [",".join(record) for record in csv.reader(io.StringIO(answer.text))]


# --- management through pydomo --------------------------------------------------------------------


def test_pydomo_creates_lists_updates_and_deletes_a_policy(domo, dataset, people):
    viewer = people("ann")
    from pydomo.datasets import FilterOperator, Policy, PolicyFilter, PolicyType

    only_east = PolicyFilter()
    only_east.column = "Region"
    only_east.values = ["East"]
    only_east.operator = FilterOperator.EQUALS
    only_east["not"] = False
    request = Policy()
    request.name = "Only East"
    request.filters = [only_east]
    request.type = PolicyType.USER
    request.users = [viewer.id]
    request.groups = []

    created = domo.pdp_create(dataset, request)
    assert created == {
        "id": created["id"],
        "type": "user",
        "name": "Only East",
        "filters": [{"column": "Region", "values": ["East"], "operator": "EQUALS", "not": False}],
        "users": [viewer.id],
        "virtualUsers": [],
        "groups": [],
    }
    assert isinstance(created["id"], int)
    assert domo.pdp_list(dataset, df_output=False) == [created]
    assert list(domo.pdp_list(dataset)["name"]) == ["Only East"]

    renamed = domo.pdp_update(dataset, created["id"], {"name": "p2"})
    assert renamed == {**created, "name": "p2"}  # a partial update keeps the other fields

    assert domo.pdp_delete(dataset, created["id"]) is None
    assert domo.pdp_list(dataset, df_output=False) == []


def test_pydomo_dataset_client_pdp_methods(domo, dataset, people):
    viewer = people("bea")
    # pydomo's docstring example: no type, no groups, no "not"
    created = domo.datasets.create_pdp(
        dataset,
        {
            "name": "Only Show Attendees",
            "filters": [{"column": "Region", "values": ["East"], "operator": "EQUALS"}],
            "users": [viewer.id],
        },
    )
    assert (created["type"], created["groups"], created["filters"][0]["not"]) == ("user", [], False)
    assert domo.datasets.get_pdp(dataset, created["id"]) == created
    assert domo.datasets.list_pdps(dataset) == [created]
    updated = domo.datasets.update_pdp(
        dataset,
        created["id"],
        {"filters": [{"column": "Amount", "values": ["10", "30"], "operator": "BETWEEN", "not": True}]},
    )
    assert updated["filters"] == [
        {"column": "Amount", "values": ["10", "30"], "operator": "BETWEEN", "not": True}
    ]
    assert updated["name"] == "Only Show Attendees" and updated["users"] == [viewer.id]
    assert domo.datasets.delete_pdp(dataset, created["id"]) is None
    with pytest.raises(Exception, match="404"):
        domo.datasets.get_pdp(dataset, created["id"])


# --- management over HTTP ---------------------------------------------------------------------------


def test_a_java_style_body_with_id_0_gets_a_new_id_and_list_takes_limit_and_offset(client, dataset):
    first = create_policy(client, dataset, id=0, virtualUsers=["v-1"], name="one")
    second = create_policy(client, dataset, id=0, name="two", type="OPEN")
    assert first["id"] > 0 and second["id"] > first["id"]
    assert first["virtualUsers"] == ["v-1"] and second["type"] == "open"
    page = client.get(f"/v1/datasets/{dataset}/policies", params={"limit": 50, "offset": 0})
    assert page.status_code == 200 and [p["name"] for p in page.json()] == ["one", "two"]
    page = client.get(f"/v1/datasets/{dataset}/policies", params={"limit": 1, "offset": 1})
    assert [p["name"] for p in page.json()] == ["two"]


def test_a_full_put_replaces_every_field_and_ignores_the_id(client, dataset, people):
    viewer = people("cat")
    created = create_policy(client, dataset, name="before")
    full = {
        "id": 0,
        "type": "system",
        "name": "after",
        "filters": [
            {"column": "Day", "values": ["2024-01-02"], "operator": "GREATER_THAN_EQUAL", "not": False}
        ],
        "users": [viewer.id],
        "virtualUsers": [],
        "groups": [],
    }
    answer = client.put(f"/v1/datasets/{dataset}/policies/{created['id']}", json=full)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {**full, "id": created["id"]}
    assert client.get(f"/v1/datasets/{dataset}/policies/{created['id']}").json() == answer.json()


BAD_BODIES = {
    "unknown column": (
        {"filters": [{"column": "Nope", "values": ["x"], "operator": "EQUALS"}]},
        "no column 'Nope'",
    ),
    "unknown operator": (
        {"filters": [{"column": "Region", "values": ["x"], "operator": "ROUGHLY"}]},
        "unknown operator 'ROUGHLY'",
    ),
    "BETWEEN with one value": (
        {"filters": [{"column": "Amount", "values": ["1"], "operator": "BETWEEN"}]},
        "BETWEEN needs exactly 2 values",
    ),
    "a comparison with two values": (
        {"filters": [{"column": "Amount", "values": ["1", "2"], "operator": "LESS_THAN"}]},
        "LESS_THAN needs exactly 1 value",
    ),
    "EQUALS with no value": (
        {"filters": [{"column": "Region", "values": [], "operator": "EQUALS"}]},
        "EQUALS needs at least 1 value",
    ),
    "a value that is not a LONG": (
        {"filters": [{"column": "Amount", "values": ["ten"], "operator": "EQUALS"}]},
        "value 'ten' is not a LONG",
    ),
    "a value that is not a DATE": (
        {"filters": [{"column": "Day", "values": ["2024-13-01"], "operator": "LESS_THAN"}]},
        "is not a DATE",
    ),
    "a null value": ({"filters": [{"column": "Region", "values": [None], "operator": "EQUALS"}]}, "value"),
    "an unknown user": ({"users": [987654321]}, "unknown user ids: 987654321"),
    "an unknown group": ({"groups": [987654321]}, "unknown group ids: 987654321"),
    "a user id that is not a number": ({"users": ["bob"]}, "numeric ids"),
    "an unknown type": ({"type": "everyone"}, "type must be user, system or open"),
    "filters not a list": ({"filters": "Region=East"}, "filters must be a list"),
    "an empty name": ({"name": "  "}, "name must not be empty"),
}


@pytest.mark.parametrize(("change", "message"), BAD_BODIES.values(), ids=BAD_BODIES.keys())
def test_a_bad_policy_is_400_with_a_clear_message_and_changes_nothing(client, dataset, change, message):
    created = create_policy(client, dataset, name="kept")
    refused = client.post(f"/v1/datasets/{dataset}/policies", json={"name": "new", **change})
    assert refused.status_code == 400, refused.text
    assert message in refused.json()["message"]
    refused = client.put(f"/v1/datasets/{dataset}/policies/{created['id']}", json=change)
    assert refused.status_code == 400, refused.text
    assert message in refused.json()["message"]
    assert client.get(f"/v1/datasets/{dataset}/policies").json() == [created]


def test_a_policy_needs_a_name(client, dataset):
    refused = client.post(f"/v1/datasets/{dataset}/policies", json={"filters": [east_only()]})
    assert refused.status_code == 400 and "name" in refused.json()["message"]


def test_unknown_datasets_and_policies_are_404(client, dataset, unique):
    other = client.post("/v1/datasets", json={"name": f"other-{unique}", "schema": SCHEMA}).json()["id"]
    policy = create_policy(client, dataset)
    missing = "00000000-0000-0000-0000-000000000000"
    for method, path in [
        ("GET", f"/v1/datasets/{missing}/policies"),
        ("POST", f"/v1/datasets/{missing}/policies"),
        ("GET", f"/v1/datasets/{dataset}/policies/987654321"),
        ("GET", f"/v1/datasets/{dataset}/policies/abc"),
        ("GET", f"/v1/datasets/{other}/policies/{policy['id']}"),  # a policy of another dataset
        ("PUT", f"/v1/datasets/{dataset}/policies/987654321"),
        ("DELETE", f"/v1/datasets/{dataset}/policies/987654321"),
        ("DELETE", f"/v1/datasets/{other}/policies/{policy['id']}"),
    ]:
        answer = client.request(method, path, json={"name": "x"})
        assert answer.status_code == 404, (method, path, answer.text)
    assert client.get(f"/v1/datasets/{dataset}/policies/{policy['id']}").status_code == 200


def test_only_co_owners_read_and_manage_policies_and_strangers_see_nothing(client, dataset, people):
    viewer, co_owner, stranger = people("dan"), people("eve"), people("fay")
    share(client, dataset, viewer.id, "CAN_SHARE")
    share(client, dataset, co_owner.id, "CO_OWNER")
    policy = create_policy(client, dataset, users=[viewer.id])
    path = f"/v1/datasets/{dataset}/policies"

    # Policies name other users and their filters: even a sharer bound by PDP may not read them.
    assert viewer.client.get(path).status_code == 403
    assert viewer.client.get(f"{path}/{policy['id']}").status_code == 403
    assert co_owner.client.get(path).json() == [policy]
    assert viewer.client.post(path, json={"name": "mine"}).status_code == 403
    assert viewer.client.put(f"{path}/{policy['id']}", json={"name": "mine"}).status_code == 403
    assert viewer.client.delete(f"{path}/{policy['id']}").status_code == 403

    assert stranger.client.get(path).status_code == 404
    assert stranger.client.post(path, json={"name": "x"}).status_code == 404
    assert stranger.client.get(f"{path}/{policy['id']}").status_code == 404

    made = co_owner.client.post(path, json={"name": "by co-owner", "users": [viewer.id]})
    assert made.status_code == 201, made.text
    assert co_owner.client.delete(f"{path}/{made.json()['id']}").status_code == 204
    assert client.get(path).json() == [policy]


def test_every_policy_write_is_in_the_activity_log(client, dataset):
    policy = create_policy(client, dataset, name="audited")
    assert (
        client.put(f"/v1/datasets/{dataset}/policies/{policy['id']}", json={"name": "renamed"}).status_code
        == 200
    )
    assert client.delete(f"/v1/datasets/{dataset}/policies/{policy['id']}").status_code == 204
    entries = client.get("/v1/audit", params={"limit": 200}).json()
    mine = [
        e
        for e in entries
        if e["objectType"] == "POLICY"
        and e["objectId"] == str(policy["id"])
        and dataset in e["additionalComment"]
    ]
    assert [e["objectName"] for e in mine] == ["renamed", "renamed", "audited"]  # newest first
    for entry, verb in zip(mine, ["delete", "update", "create"], strict=True):
        assert verb in entry["eventText"].lower()


# --- enforcement ----------------------------------------------------------------------------------


@pytest.fixture
def guarded(client, dataset, people):
    """A PDP dataset shared with ``named`` (a policy lets it see East) and ``unnamed`` (no policy)."""
    named, unnamed = people("gus"), people("hal")
    share(client, dataset, named.id)
    share(client, dataset, unnamed.id)
    policy = create_policy(client, dataset, users=[named.id])
    set_pdp(client, dataset, True)
    return dataset, named, unnamed, policy


def test_a_viewer_named_by_a_policy_sees_only_its_rows_in_queries_and_exports(guarded):
    dataset, named, _, _ = guarded
    assert regions(named.client, dataset) == ["East", "East"]
    assert query(named.client, dataset, "SELECT * FROM table ORDER BY Amount") == [
        ["East", 10, "2024-01-01"],
        ["East", 30, "2024-01-03"],
    ]
    assert exported(named.client, dataset) == [
        "Region,Amount,Day",
        "East,10,2024-01-01",
        "East,30,2024-01-03",
    ]


def test_a_viewer_named_by_no_policy_sees_no_rows(guarded):
    dataset, _, unnamed, _ = guarded
    assert regions(unnamed.client, dataset) == []
    assert query(unnamed.client, dataset, "SELECT COUNT(*) FROM table") == [[0]]
    assert exported(unnamed.client, dataset) == ["Region,Amount,Day"]


def test_the_owner_and_admins_see_every_row(client, guarded):
    dataset = guarded[0]
    assert regions(client, dataset) == ALL_REGIONS
    assert len(exported(client, dataset)) == 6


def test_the_product_query_endpoint_is_filtered_too(guarded):
    dataset, named, _, _ = guarded
    answer = named.client.post(f"/api/query/v1/execute/{dataset}", json={"sql": "SELECT Region FROM table"})
    assert answer.status_code == 200, answer.text
    assert answer.json() == [{"Region": "East"}, {"Region": "East"}]


def bypasses(dataset: str) -> dict[str, tuple[str, list[list]]]:
    return {
        "plain select": ("SELECT Region FROM table", [["East"], ["East"]]),
        "a WHERE that tries to widen": (
            "SELECT Region FROM table WHERE Region = 'West' OR 1=1",
            [["East"], ["East"]],
        ),
        "a subquery": ("SELECT Region FROM (SELECT * FROM table) AS t", [["East"], ["East"]]),
        "a CTE": ("WITH x AS (SELECT * FROM table) SELECT Region FROM x", [["East"], ["East"]]),
        "a table alias": ("SELECT t.Region FROM table AS t", [["East"], ["East"]]),
        "UNION with itself": (
            "SELECT Region FROM table UNION ALL SELECT Region FROM table",
            [["East"]] * 4,
        ),
        "the dataset id as table name": (f'SELECT Region FROM "{dataset}"', [["East"], ["East"]]),
        "the dataset id backticked": (f"SELECT Region FROM `{dataset}`", [["East"], ["East"]]),
        "COUNT(*)": ("SELECT COUNT(*) FROM table", [[2]]),
        "SUM": ("SELECT SUM(Amount) FROM table", [[40]]),
        "a self-join": (
            "SELECT a.Region FROM table a JOIN table b ON a.Amount = b.Amount",
            [["East"], ["East"]],
        ),
        "a scalar subquery": ("SELECT (SELECT MAX(Amount) FROM table) AS m", [[30]]),
        "EXISTS probing a hidden row": (
            "SELECT COUNT(*) FROM table WHERE EXISTS (SELECT 1 FROM table WHERE Region = 'West')",
            [[0]],
        ),
    }


def test_sql_cannot_get_around_the_policy(guarded):
    dataset, named, _, _ = guarded
    for name, (sql, expected) in bypasses(dataset).items():
        answer = named.client.post(f"/v1/datasets/query/execute/{dataset}", json={"sql": sql})
        assert answer.status_code == 200, (name, answer.text)
        assert sorted(answer.json()["rows"]) == sorted(expected), name


def test_disabling_pdp_shows_every_row_again(client, guarded):
    dataset, named, unnamed, _ = guarded
    set_pdp(client, dataset, False)
    assert regions(named.client, dataset) == ALL_REGIONS
    assert regions(unnamed.client, dataset) == ALL_REGIONS
    assert len(exported(unnamed.client, dataset)) == 6


def test_a_policy_change_applies_on_the_next_request(client, guarded):
    dataset, named, unnamed, policy = guarded
    path = f"/v1/datasets/{dataset}/policies/{policy['id']}"
    assert client.put(path, json={"filters": [east_only("West")]}).status_code == 200
    assert regions(named.client, dataset) == ["West"]
    assert client.put(path, json={"users": [named.id, unnamed.id]}).status_code == 200
    assert regions(unnamed.client, dataset) == ["West"]
    assert exported(unnamed.client, dataset) == ["Region,Amount,Day", "West,20,2024-01-02"]
    assert client.put(path, json={"type": "open"}).status_code == 200
    assert regions(named.client, dataset) == ALL_REGIONS
    assert client.delete(path).status_code == 204
    assert regions(named.client, dataset) == []


def test_rows_any_policy_naming_the_viewer_allows_are_visible(client, guarded):
    dataset, named, _, _ = guarded
    create_policy(
        client,
        dataset,
        users=[named.id],
        filters=[{"column": "Amount", "values": ["40"], "operator": "GREATER_THAN_EQUAL", "not": False}],
    )
    assert regions(named.client, dataset) == ["East", "East", "North", None]  # Amount 50 has no Region


def test_text_and_typed_operators_work_inside_the_query_sandbox(client, guarded):
    dataset, _, unnamed, _ = guarded
    west_early = [
        {"column": "Region", "values": ["W%"], "operator": "LIKE", "not": False},
        {"column": "Day", "values": ["2024-01-01", "2024-01-02"], "operator": "BETWEEN", "not": False},
    ]
    north = [
        {"column": "Region", "values": ["No"], "operator": "BEGINS_WITH", "not": False},
        {"column": "Region", "values": ["or"], "operator": "CONTAINS", "not": False},
        {"column": "Region", "values": ["th"], "operator": "ENDS_WITH", "not": False},
        {"column": "Amount", "values": ["40"], "operator": "LESS_THAN_EQUAL", "not": False},
    ]
    create_policy(client, dataset, users=[unnamed.id], filters=west_early)
    create_policy(client, dataset, users=[unnamed.id], filters=north)
    assert regions(unnamed.client, dataset) == ["West", "North"]
    assert exported(unnamed.client, dataset)[1:] == ["West,20,2024-01-02", "North,40,2024-01-04"]


def test_a_negated_filter_never_shows_a_null_row(client, guarded):
    dataset, _, unnamed, _ = guarded
    create_policy(
        client,
        dataset,
        users=[unnamed.id],
        filters=[{"column": "Region", "values": ["East"], "operator": "EQUALS", "not": True}],
    )
    assert regions(unnamed.client, dataset) == ["West", "North"]


def test_a_policy_naming_a_group_applies_to_its_members(client, guarded, unique):
    dataset, _, unnamed, _ = guarded
    group = client.post("/v1/groups", json={"name": f"pdp-{unique}"})
    assert group.status_code == 201, group.text
    group_id = group.json()["id"]
    create_policy(client, dataset, groups=[group_id], filters=[east_only("North")])
    assert regions(unnamed.client, dataset) == []
    assert client.put(f"/v1/groups/{group_id}/users/{unnamed.id}", json={}).status_code == 204
    assert regions(unnamed.client, dataset) == ["North"]
    assert client.put(f"/v1/groups/{group_id}", json={"active": False}).status_code == 200
    assert regions(unnamed.client, dataset) == []  # an inactive group grants nothing


def test_a_co_owner_sees_every_row(client, guarded, people):
    dataset = guarded[0]
    co_owner = people("ida")
    share(client, dataset, co_owner.id, "CO_OWNER")
    assert regions(co_owner.client, dataset) == ALL_REGIONS


def test_an_editor_bound_by_pdp_cannot_turn_it_off(client, guarded, people):
    dataset = guarded[0]
    editor = people("jo")
    share(client, dataset, editor.id, "CAN_EDIT")
    answer = editor.client.put(f"/v1/datasets/{dataset}", json={"pdpEnabled": False})
    assert answer.status_code == 403, answer.text
    assert client.get(f"/v1/datasets/{dataset}").json()["pdpEnabled"] is True
    assert regions(editor.client, dataset) == []
