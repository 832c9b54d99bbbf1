"""``AccountService`` as the run engine and stream creation call it: ``usable`` hands out credentials
only to users allowed to use the account, merged updates keep masked values, and a sealed value is
bound to its account. Real catalogs (SQLite and PostgreSQL) through ``build_services``."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from datagrove.app import Services, build_services
from datagrove.crypto import SecretKeyError
from datagrove.domain import AccessLevel, Actor, PrincipalType, Role, User
from datagrove.errors import Conflict, Forbidden, NotFound
from datagrove.services.accounts import MASK
from datagrove.settings import Settings
from tests.support.postgres import private_schema

PASSWORD = "pw-" + uuid.uuid4().hex


@pytest.fixture(params=["sqlite", "postgres"])
def services(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Services]:
    monkeypatch.delenv("DATAGROVE_CATALOG_URL", raising=False)
    monkeypatch.delenv("DATAGROVE_SECRET_KEY", raising=False)
    if request.param == "sqlite":
        yield build_services(Settings(data_dir=tmp_path))
        return
    with private_schema() as url:
        built = build_services(Settings(data_dir=tmp_path, catalog_url=url))
        yield built
        built.catalog.engine.dispose()


def person(services: Services, role: Role = Role.EDITOR) -> Actor:
    name = "u-" + uuid.uuid4().hex[:8]
    user = services.catalog.create_user(name=name, email=f"{name}@example.com", role=role)
    return Actor(user=user, scopes=None, credential="test")


def operator() -> Actor:
    now = datetime.now(UTC)
    return Actor(
        User(0, "test operator", "op@localhost", Role.ADMIN, now, now), scopes=None, credential="test"
    )


def test_usable_gives_the_owner_the_credentials_and_hides_them_from_repr(services: Services):
    owner = person(services)
    account = services.accounts.create(
        actor=owner, name="pg", type="postgresql", credentials={"password": PASSWORD, "user": "bob"}
    )
    usable = services.accounts.usable(user_id=owner.user.id, account_id=account.id)
    assert usable.id == account.id and usable.type == "postgresql"
    assert usable.credentials == {"password": PASSWORD, "user": "bob"}
    assert PASSWORD not in repr(usable)
    assert services.accounts.get(actor=owner, account_id=account.id).credential_keys == ("password", "user")


def test_an_update_with_masked_values_keeps_the_stored_credentials(services: Services):
    owner = person(services)
    account = services.accounts.create(
        actor=owner,
        name="pg",
        type="postgresql",
        credentials={"password": PASSWORD, "user": "bob", "host": "h"},
    )
    services.accounts.update(
        actor=owner,
        account_id=account.id,
        name="renamed",
        credentials={"password": MASK, "user": "alice", "host": None},
    )
    usable = services.accounts.usable(user_id=owner.user.id, account_id=account.id)
    assert usable.credentials == {"password": PASSWORD, "user": "alice"}


def test_usable_is_404_for_a_user_without_a_grant_and_works_once_shared(services: Services):
    owner, other, member = (
        person(services),
        person(services, Role.PARTICIPANT),
        person(services, Role.PARTICIPANT),
    )
    account = services.accounts.create(
        actor=owner, name="pg", type="postgresql", credentials={"password": PASSWORD}
    )
    with pytest.raises(NotFound) as refused:
        services.accounts.usable(user_id=other.user.id, account_id=account.id)
    assert PASSWORD not in refused.value.message
    services.accounts.share(
        actor=owner, account_id=account.id, principal_type=PrincipalType.USER, principal_id=other.user.id
    )
    assert (
        services.accounts.usable(user_id=other.user.id, account_id=account.id).credentials["password"]
        == PASSWORD
    )

    group = services.people.create_group(actor=operator(), name="g-" + uuid.uuid4().hex[:8], active=True)
    services.people.add_member(actor=operator(), group_id=group.id, user_id=member.user.id)
    with pytest.raises(NotFound):
        services.accounts.usable(user_id=member.user.id, account_id=account.id)
    services.accounts.share(
        actor=owner,
        account_id=account.id,
        principal_type=PrincipalType.GROUP,
        principal_id=group.id,
        level=AccessLevel.CAN_EDIT,
    )
    assert services.accounts.usable(user_id=member.user.id, account_id=account.id).type == "postgresql"
    # An inactive group's grants reach nobody.
    services.people.update_group(actor=operator(), group_id=group.id, active=False)
    with pytest.raises(NotFound):
        services.accounts.usable(user_id=member.user.id, account_id=account.id)


def test_a_viewer_may_use_but_not_change_and_an_unknown_account_is_404(services: Services):
    owner, viewer = person(services), person(services, Role.PARTICIPANT)
    account = services.accounts.create(actor=owner, name="pg", type="postgresql", credentials={})
    services.accounts.share(
        actor=owner, account_id=account.id, principal_type=PrincipalType.USER, principal_id=viewer.user.id
    )
    with pytest.raises(Forbidden):
        services.accounts.update(actor=viewer, account_id=account.id, name="mine")
    with pytest.raises(NotFound):
        services.accounts.usable(user_id=owner.user.id, account_id=account.id + 1000)


def test_a_sealed_value_copied_to_another_account_does_not_open(services: Services):
    owner = person(services)
    first = services.accounts.create(
        actor=owner, name="a", type="http", credentials={"bearerToken": PASSWORD}
    )
    second = services.accounts.create(
        actor=owner, name="b", type="http", credentials={"bearerToken": "other"}
    )
    engine = services.catalog.engine
    with engine.begin() as db:
        sealed = db.execute(
            sa.text("SELECT credentials FROM dg_accounts WHERE id = :i"), {"i": first.id}
        ).scalar_one()
        db.execute(
            sa.text("UPDATE dg_accounts SET credentials = :c WHERE id = :i"), {"c": sealed, "i": second.id}
        )
    with pytest.raises(SecretKeyError) as failed:
        services.accounts.usable(user_id=owner.user.id, account_id=second.id)
    assert PASSWORD not in str(failed.value)


def test_an_account_a_stream_uses_is_not_deleted(services: Services):
    owner = person(services)
    account = services.accounts.create(actor=owner, name="pg", type="postgresql", credentials={})
    now = datetime.now(UTC)
    with services.catalog.engine.begin() as db:
        db.execute(
            sa.text(
                "INSERT INTO dg_streams (dataset_id, update_method, created_at, modified_at, account_id) "
                "VALUES (:d, 'REPLACE', :n, :n, :a)"
            ),
            {"d": str(uuid.uuid4()), "n": now, "a": account.id},
        )
    with pytest.raises(Conflict, match="stream"):
        services.accounts.delete(actor=owner, account_id=account.id)
    assert services.accounts.get(actor=owner, account_id=account.id).id == account.id


def test_a_user_who_owns_an_account_is_not_deleted(services: Services):
    owner = person(services)
    services.accounts.create(actor=owner, name="pg", type="postgresql", credentials={})
    with pytest.raises(Conflict, match="account"):
        services.people.delete_user(actor=operator(), user_id=owner.user.id)
