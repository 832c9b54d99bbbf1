"""``PUT /api/data/v3/datasources/{id}/permissions`` sets one principal's level, up or down (§3.4.3)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.e2e.test_sharing import DS, Person, grants, new_dataset, new_person, share
from tests.support.server import RunningServer


@pytest.fixture
def owner(server: RunningServer) -> Person:
    return new_person(server, role="Editor")


def put(client, dataset_id: str, kind: str, principal: object, level: str):  # type: ignore[no-untyped-def]
    return client.put(
        f"{DS}/{dataset_id}/permissions", json={"type": kind, "id": principal, "accessLevel": level}
    )


def test_an_owner_raises_and_lowers_a_grant_and_gets_the_list_back(server: RunningServer, owner: Person):
    other = new_person(server)
    with owner.client(server) as client:
        dataset_id = new_dataset(client)
        raised = put(client, dataset_id, "USER", other.id, "CAN_EDIT")
        assert raised.status_code == 200, raised.text
        assert raised.json() == client.get(f"{DS}/{dataset_id}/permissions").json()
        assert {
            "type": "USER",
            "id": str(other.id),
            "accessLevel": "CAN_EDIT",
            "name": other.name,
        } in raised.json()["list"]
        lowered = put(client, dataset_id, "USER", str(other.id), "CAN_VIEW")  # id as a numeric string
        assert lowered.status_code == 200, lowered.text
        assert grants(client, dataset_id)[("USER", str(other.id))] == "CAN_VIEW"
    with other.client(server) as theirs:  # the lower level holds on the very next request
        assert theirs.post(f"{DS}/{dataset_id}/uploads", json={"values": "x,1"}).status_code == 403
        assert theirs.get(f"{DS}/{dataset_id}/permissions/currentUser").json() == "CAN_VIEW"


def test_none_removes_the_grant(server: RunningServer, owner: Person):
    other = new_person(server)
    with owner.client(server) as client:
        dataset_id = new_dataset(client)
        assert put(client, dataset_id, "USER", other.id, "CAN_VIEW").status_code == 200
        removed = put(client, dataset_id, "USER", other.id, "NONE")
        assert removed.status_code == 200, removed.text
        assert ("USER", str(other.id)) not in grants(client, dataset_id)
    with other.client(server) as theirs:
        assert theirs.get(f"{DS}/{dataset_id}").status_code == 404


@pytest.mark.parametrize("body", [{}, {"accessLevel": None}, {"access_level": "NONE"}])
def test_a_missing_level_is_400_and_removes_nothing(server: RunningServer, owner: Person, body: dict):
    other = new_person(server)
    with owner.client(server) as client:
        dataset_id = new_dataset(client)
        assert put(client, dataset_id, "USER", other.id, "CAN_VIEW").status_code == 200
        refused = client.put(f"{DS}/{dataset_id}/permissions", json={"type": "USER", "id": other.id, **body})
        assert refused.status_code == 400, refused.text
        assert "accessLevel" in refused.json()["message"]
        assert grants(client, dataset_id)[("USER", str(other.id))] == "CAN_VIEW"


def test_a_sharer_may_raise_up_to_its_own_level_but_not_lower(server: RunningServer, owner: Person):
    sharer, other = new_person(server), new_person(server)
    with owner.client(server) as client:
        dataset_id = new_dataset(client)
        assert put(client, dataset_id, "USER", sharer.id, "CAN_SHARE").status_code == 200
    with sharer.client(server) as theirs:
        assert put(theirs, dataset_id, "USER", other.id, "CAN_EDIT").status_code == 200
        too_high = put(theirs, dataset_id, "USER", other.id, "CO_OWNER")
        assert too_high.status_code == 403 and "CO_OWNER" in too_high.json()["message"]
        lowering = put(theirs, dataset_id, "USER", other.id, "CAN_VIEW")
        assert lowering.status_code == 403 and "lowering" in lowering.json()["message"]
        assert put(theirs, dataset_id, "USER", other.id, "NONE").status_code == 403
        assert grants(theirs, dataset_id)[("USER", str(other.id))] == "CAN_EDIT"


def test_a_co_owner_may_lower_anyone_but_the_last_owner(server: RunningServer, owner: Person):
    co_owner, second_owner = new_person(server), new_person(server)
    with owner.client(server) as client:
        dataset_id = new_dataset(client)
        assert put(client, dataset_id, "USER", co_owner.id, "CO_OWNER").status_code == 200
        assert put(client, dataset_id, "USER", second_owner.id, "OWNER").status_code == 200
    with co_owner.client(server) as theirs:
        assert put(theirs, dataset_id, "USER", second_owner.id, "CAN_VIEW").status_code == 200
        last = put(theirs, dataset_id, "USER", owner.id, "CO_OWNER")
        assert last.status_code == 409 and "last OWNER" in last.json()["message"]
        assert put(theirs, dataset_id, "USER", owner.id, "NONE").status_code == 409
        assert grants(theirs, dataset_id)[("USER", str(owner.id))] == "OWNER"


def test_the_last_owner_cannot_lower_itself(server: RunningServer, owner: Person):
    with owner.client(server) as client:
        dataset_id = new_dataset(client)
        response = put(client, dataset_id, "USER", owner.id, "CAN_VIEW")
        assert response.status_code == 409
        assert grants(client, dataset_id) == {("USER", str(owner.id)): "OWNER"}
        unchanged = put(client, dataset_id, "USER", owner.id, "OWNER")  # its own level: nothing to do
        assert unchanged.status_code == 200


def test_viewers_may_not_set_levels_and_strangers_do_not_see_the_dataset(
    server: RunningServer, owner: Person
):
    viewer, stranger = new_person(server), new_person(server)
    with owner.client(server) as client:
        dataset_id = new_dataset(client)
        share(client, dataset_id, {"type": "USER", "id": viewer.id, "accessLevel": "CAN_VIEW"})
    with viewer.client(server) as theirs:
        assert put(theirs, dataset_id, "USER", stranger.id, "CAN_VIEW").status_code == 403
    with stranger.client(server) as theirs:
        assert put(theirs, dataset_id, "USER", stranger.id, "CAN_VIEW").status_code == 404
    with owner.client(server) as client:
        assert ("USER", str(stranger.id)) not in grants(client, dataset_id)


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({"type": "CARD", "id": 1, "accessLevel": "CAN_VIEW"}, "type"),
        ({"type": "USER", "id": "abc", "accessLevel": "CAN_VIEW"}, "id"),
        ({"type": "USER", "id": None, "accessLevel": "CAN_VIEW"}, "id"),
        ({"type": "USER", "id": 987654321, "accessLevel": "CAN_VIEW"}, "987654321"),
        ({"type": "USER", "id": "{me}", "accessLevel": "ADMIN"}, "accessLevel"),
        ([{"type": "USER", "id": 1, "accessLevel": "CAN_VIEW"}], "JSON object"),
    ],
)
def test_a_bad_permission_body_is_400_naming_it(
    server: RunningServer, owner: Person, body: object, named: str
):
    with owner.client(server) as client:
        dataset_id = new_dataset(client)
        if isinstance(body, dict) and body.get("id") == "{me}":
            body = {**body, "id": owner.id}
        response = client.put(f"{DS}/{dataset_id}/permissions", json=body)
        assert response.status_code == 400
        assert named in response.json()["message"]
        assert grants(client, dataset_id) == {("USER", str(owner.id)): "OWNER"}


def test_an_unknown_dataset_is_404(server: RunningServer, owner: Person):
    with owner.client(server) as client:
        response = put(client, "00000000-0000-4000-8000-000000000000", "USER", owner.id, "CAN_VIEW")
    assert response.status_code == 404


def test_level_changes_are_in_the_activity_log(server: RunningServer, owner: Person):
    other = new_person(server)
    with owner.client(server) as client:
        dataset_id = new_dataset(client)
        put(client, dataset_id, "USER", other.id, "CAN_EDIT")
        put(client, dataset_id, "USER", owner.id, "CAN_VIEW")  # refused: the last OWNER
    with server.client() as admin:
        entries = admin.get("/v1/audit", params={"limit": 1000}).json()
    mine = [e for e in entries if e["objectId"] == dataset_id and "Changed access" in e["eventText"]]
    assert sorted(e["eventText"] for e in mine) == [
        "Changed access to DataSet",
        "Changed access to DataSet (failed)",
    ]
    assert any("NONE -> CAN_EDIT" in e["additionalComment"] for e in mine)


def test_two_owners_lowering_each_other_at_once_leave_one_owner(server: RunningServer, owner: Person):
    other = new_person(server, role="Editor")
    with owner.client(server) as client:
        dataset_id = new_dataset(client)
        assert put(client, dataset_id, "USER", other.id, "OWNER").status_code == 200
    for _ in range(5):
        with owner.client(server) as mine, other.client(server) as theirs:
            jobs = [(mine, other.id), (theirs, owner.id)]
            with ThreadPoolExecutor(2) as pool:
                answers = list(
                    pool.map(lambda job: put(job[0], dataset_id, "USER", job[1], "CAN_EDIT"), jobs)
                )
            assert sorted(a.status_code for a in answers) in ([200, 409], [200, 403], [200, 404]), [
                a.text for a in answers
            ]
            with server.client() as admin:
                levels = grants(admin, dataset_id)
            assert list(levels.values()).count("OWNER") == 1
            # Make both owners again for the next round.
            with server.client() as admin:
                for person in (owner, other):
                    assert put(admin, dataset_id, "USER", person.id, "OWNER").status_code == 200
