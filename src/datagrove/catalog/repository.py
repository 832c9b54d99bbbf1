"""``Catalog``: the repository over the catalog database. Every method is one short transaction."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, overload

import sqlalchemy as sa

from datagrove.catalog import schema as t
from datagrove.catalog.read_cache import VersionedCache
from datagrove.catalog.versions import ACCESS, DATASETS, VersionReader, Versions, pin_request
from datagrove.catalog.visibility import visible_datasets
from datagrove.domain import AccessToken, Dataset, OAuthClient, Role, UpdateMethod, User
from datagrove.errors import Conflict, NotFound
from datagrove.tables.types import Column, ColumnType


def utcnow() -> datetime:
    return datetime.now(UTC)


@overload
def _aware(value: datetime) -> datetime: ...
@overload
def _aware(value: None) -> None: ...
@overload
def _aware(value: datetime | None) -> datetime | None: ...
def _aware(value: datetime | None) -> datetime | None:
    """SQLite hands timezone-aware columns back naive; every time in the catalog is UTC."""
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def columns_to_json(columns: Sequence[Column]) -> str:
    return json.dumps([{"type": c.type.value, "name": c.name} for c in columns])


def columns_from_json(text: str) -> tuple[Column, ...]:
    return tuple(Column(name=c["name"], type=ColumnType(c["type"])) for c in json.loads(text))


class Catalog:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        # Who is calling (asked by every request) and dataset metadata (by most), kept in memory
        # for one catalog version (catalog/read_cache.py).
        self._users = VersionedCache((ACCESS,), data=False)
        self._clients = VersionedCache((ACCESS,), data=False)
        self._token_holders = VersionedCache((ACCESS,), data=False)
        self._datasets = VersionedCache((ACCESS, DATASETS), data=True)  # the owner's name is a user's
        self._versions = VersionReader(engine)

    def ping(self) -> None:
        with self.engine.connect() as db:
            db.execute(sa.text("SELECT 1"))

    @property
    def reads_block_briefly(self) -> bool:
        """Whether a short read never waits on the network or a lock (SQLite in WAL mode: readers
        do not wait for writers), so that it may run on the event loop."""
        return self.engine.dialect.name == "sqlite"

    def versions(self) -> Versions:
        return self._versions.read()

    def pin_request(self, *, cache_data: bool) -> None:
        """Read by the catalog version for the rest of the current request (``catalog/versions.py``)."""
        pin_request(self.versions, cache_data=cache_data)

    # --- users -------------------------------------------------------------------------------

    def create_user(self, *, name: str, email: str, role: Role) -> User:
        now = utcnow()
        try:
            with self.engine.begin() as db:
                user_id = db.execute(
                    t.users.insert().values(
                        name=name, email=email, role=role.value, created_at=now, updated_at=now
                    )
                ).inserted_primary_key[0]  # type: ignore[index]
        except sa.exc.IntegrityError as exc:
            raise Conflict(f"a user with email {email!r} already exists") from exc
        return User(id=user_id, name=name, email=email, role=role, created_at=now, updated_at=now)

    def get_user(self, user_id: int) -> User:
        return self._users.get(user_id, lambda: self._read_user(user_id))

    def _read_user(self, user_id: int) -> User:
        with self.engine.connect() as db:
            row = db.execute(sa.select(t.users).where(t.users.c.id == user_id)).first()
        if row is None:
            raise NotFound(f"user {user_id} does not exist")
        return _user(row)

    def find_user_by_email(self, email: str) -> User | None:
        with self.engine.connect() as db:
            row = db.execute(sa.select(t.users).where(t.users.c.email == email)).first()
        return None if row is None else _user(row)

    def list_users(self, *, limit: int, offset: int) -> list[User]:
        query = sa.select(t.users).order_by(t.users.c.id).limit(limit).offset(offset)
        with self.engine.connect() as db:
            return [_user(row) for row in db.execute(query)]

    # --- credentials -------------------------------------------------------------------------

    def create_oauth_client(
        self, *, client_id: str, secret_hash: str, user_id: int, scopes: frozenset[str], name: str
    ) -> OAuthClient:
        try:
            with self.engine.begin() as db:
                db.execute(
                    t.oauth_clients.insert().values(
                        client_id=client_id,
                        secret_hash=secret_hash,
                        user_id=user_id,
                        scopes=" ".join(sorted(scopes)),
                        name=name,
                        created_at=utcnow(),
                    )
                )
        except sa.exc.IntegrityError as exc:
            raise Conflict(f"an OAuth client {client_id!r} already exists") from exc
        return OAuthClient(client_id, secret_hash, user_id, scopes, name)

    def get_oauth_client(self, client_id: str) -> OAuthClient | None:
        return self._clients.get(client_id, lambda: self._read_oauth_client(client_id))

    def _read_oauth_client(self, client_id: str) -> OAuthClient | None:
        with self.engine.connect() as db:
            row = db.execute(
                sa.select(t.oauth_clients).where(t.oauth_clients.c.client_id == client_id)
            ).first()
        if row is None:
            return None
        return OAuthClient(
            row.client_id, row.secret_hash, row.user_id, frozenset(row.scopes.split()), row.name
        )

    def create_access_token(
        self, *, token_hash: str, user_id: int, name: str, expires_at: datetime | None
    ) -> AccessToken:
        now = utcnow()
        with self.engine.begin() as db:
            token_id = db.execute(
                t.access_tokens.insert().values(
                    token_hash=token_hash, user_id=user_id, name=name, expires_at=expires_at, created_at=now
                )
            ).inserted_primary_key[0]  # type: ignore[index]
        return AccessToken(token_id, user_id, name, expires_at, now)

    def find_access_token(self, token_hash: str) -> AccessToken | None:
        with self.engine.connect() as db:
            row = db.execute(
                sa.select(t.access_tokens).where(t.access_tokens.c.token_hash == token_hash)
            ).first()
        if row is None:
            return None
        return _access_token(row)

    def find_token_holder(self, token_hash: str) -> tuple[AccessToken, User] | None:
        """The developer token with this digest and its user, in one read (every request asks)."""
        return self._token_holders.get(token_hash, lambda: self._read_token_holder(token_hash))

    def _read_token_holder(self, token_hash: str) -> tuple[AccessToken, User] | None:
        with self.engine.connect() as db:
            row = db.execute(_TOKEN_HOLDER, {"token_hash": token_hash}).first()
        if row is None:
            return None
        return _access_token(row), _user(row, prefix="holder_")

    def get_access_token(self, token_id: int) -> AccessToken:
        with self.engine.connect() as db:
            row = db.execute(sa.select(t.access_tokens).where(t.access_tokens.c.id == token_id)).first()
        if row is None:
            raise NotFound(f"access token {token_id} does not exist")
        return _access_token(row)

    def list_access_tokens(self, *, user_id: int | None = None) -> list[AccessToken]:
        """Developer token records (never their values), oldest first; only ``user_id``'s if given."""
        query = sa.select(t.access_tokens).order_by(t.access_tokens.c.id)
        if user_id is not None:
            query = query.where(t.access_tokens.c.user_id == user_id)
        with self.engine.connect() as db:
            return [_access_token(row) for row in db.execute(query)]

    def delete_access_token(self, token_id: int) -> None:
        with self.engine.begin() as db:
            deleted = db.execute(t.access_tokens.delete().where(t.access_tokens.c.id == token_id))
        if deleted.rowcount == 0:
            raise NotFound(f"access token {token_id} does not exist")

    def server_key(self, name: str, *, default: str) -> str:
        """The persisted value of server key ``name``, storing ``default`` first if there is none."""
        with self.engine.begin() as db:
            row = db.execute(sa.select(t.server_keys.c.value).where(t.server_keys.c.name == name)).first()
            if row is not None:
                return str(row.value)
            try:
                with db.begin_nested():
                    db.execute(t.server_keys.insert().values(name=name, value=default))
            except sa.exc.IntegrityError:  # another process stored one first: use theirs
                pass
            return str(
                db.execute(sa.select(t.server_keys.c.value).where(t.server_keys.c.name == name)).scalar_one()
            )

    # --- datasets ------------------------------------------------------------------------------

    def create_dataset(
        self,
        *,
        dataset_id: str,
        name: str,
        description: str,
        owner_id: int,
        columns: Sequence[Column],
        stream_update_method: UpdateMethod,
    ) -> Dataset:
        """The dataset, its stream and its owner's grant, in one transaction."""
        now = utcnow()
        with self.engine.begin() as db:
            db.execute(
                t.datasets.insert().values(
                    id=dataset_id,
                    name=name,
                    description=description,
                    owner_id=owner_id,
                    schema_json=columns_to_json(columns),
                    row_count=0,
                    pdp_enabled=False,
                    created_at=now,
                    updated_at=now,
                    data_updated_at=None,
                )
            )
            db.execute(
                t.streams.insert().values(
                    dataset_id=dataset_id,
                    update_method=stream_update_method.value,
                    created_at=now,
                    modified_at=now,
                )
            )
            db.execute(t.append_state.insert().values(dataset_id=dataset_id))
            db.execute(
                t.dataset_permissions.insert().values(
                    dataset_id=dataset_id,
                    principal_type="USER",
                    principal_id=owner_id,
                    access_level="OWNER",
                    granted_by=owner_id,
                    granted_at=now,
                )
            )
        return self.get_dataset(dataset_id)

    def get_dataset(self, dataset_id: str) -> Dataset:
        return self._datasets.get(dataset_id, lambda: self._read_dataset(dataset_id))

    def _read_dataset(self, dataset_id: str) -> Dataset:
        with self.engine.connect() as db:
            row = db.execute(_DATASET_BY_ID, {"dataset_id": dataset_id}).first()
        if row is None:
            raise NotFound(f"dataset {dataset_id} does not exist")
        return _dataset(row)

    def list_datasets(
        self,
        *,
        limit: int,
        offset: int,
        name_like: str | None,
        sort: str | None,
        visible_to: int | None = None,
    ) -> list[Dataset]:
        """A page of datasets; with ``visible_to``, only those some grant reaches that user with."""
        query = _dataset_query()
        if name_like:
            escaped = name_like.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            query = query.where(sa.func.lower(t.datasets.c.name).like(f"%{escaped.lower()}%", escape="\\"))
        if visible_to is not None:
            query = query.where(visible_datasets(visible_to))
        query = query.order_by(*_dataset_order(sort)).limit(limit).offset(offset)
        with self.engine.connect() as db:
            return [_dataset(row) for row in db.execute(query)]

    def update_dataset(self, dataset_id: str, **changes: Any) -> Dataset:
        """Apply ``changes``: name, description, owner_id, columns, pdp_enabled, row_count, data_updated_at."""
        values = dict(changes)
        if "columns" in values:
            values["schema_json"] = columns_to_json(values.pop("columns"))
        values["updated_at"] = utcnow()
        with self.engine.begin() as db:
            updated = db.execute(t.datasets.update().where(t.datasets.c.id == dataset_id).values(**values))
        if updated.rowcount == 0:
            raise NotFound(f"dataset {dataset_id} does not exist")
        return self.get_dataset(dataset_id)

    def delete_dataset(self, dataset_id: str) -> None:
        with self.engine.begin() as db:
            deleted = db.execute(t.datasets.delete().where(t.datasets.c.id == dataset_id))
        if deleted.rowcount == 0:
            raise NotFound(f"dataset {dataset_id} does not exist")


# How many columns a dataset has, from its schema JSON (one ``{"type": `` per column, as
# columns_to_json writes it; a quote inside a name is escaped, so it cannot fake one): portable SQL.
_COLUMN_COUNT = (
    sa.func.length(t.datasets.c.schema_json)
    - sa.func.length(sa.func.replace(t.datasets.c.schema_json, '{"type": ', ""))
) / len('{"type": ')

_SORTS = {
    "name": t.datasets.c.name,
    "lastupdated": t.datasets.c.updated_at,
    "lasttouched": t.datasets.c.updated_at,
    "createdat": t.datasets.c.created_at,
    "rows": t.datasets.c.row_count,
    "owner": sa.literal_column("owner_name"),
    "columns": _COLUMN_COUNT,
}


def _dataset_order(sort: str | None) -> list[Any]:
    """Domo sort names (``name``, ``-name``, ``lastUpdated``...), unknown ones ignored; id breaks ties."""
    order: list[Any] = []
    if sort:
        descending = sort.startswith("-")
        column = _SORTS.get(sort.lstrip("-+").lower())
        if column is not None:
            order.append(column.desc() if descending else column.asc())
    order.append(t.datasets.c.created_at.asc())
    order.append(t.datasets.c.id.asc())
    return order


def _build_dataset_query() -> sa.Select[Any]:
    owner = t.users.alias("owner")
    appends = t.append_state
    return (
        sa.select(
            t.datasets,
            owner.c.name.label("owner_name"),
            owner.c.email.label("owner_email"),
            owner.c.role.label("owner_role"),
            owner.c.created_at.label("owner_created_at"),
            owner.c.updated_at.label("owner_updated_at"),
            # Rows acknowledged by the one-row append and not yet in the table's row count.
            (appends.c.last_seq - appends.c.folded_seq).label("buffered_rows"),
        )
        .join(owner, owner.c.id == t.datasets.c.owner_id)
        .outerjoin(appends, appends.c.dataset_id == t.datasets.c.id)
    )


# Built once: building it (an alias and a join) took as long as running it.
_DATASET_QUERY = _build_dataset_query()
_DATASET_BY_ID = _DATASET_QUERY.where(t.datasets.c.id == sa.bindparam("dataset_id"))


def _dataset_query() -> sa.Select[Any]:
    return _DATASET_QUERY


# Built once (with a bound parameter): building a statement costs as much as running it.
_TOKEN_HOLDER = (
    sa.select(
        t.access_tokens,
        *(column.label(f"holder_{column.name}") for column in t.users.c),
    )
    .join(t.users, t.users.c.id == t.access_tokens.c.user_id)
    .where(t.access_tokens.c.token_hash == sa.bindparam("token_hash"))
)


def _access_token(row: Any) -> AccessToken:
    return AccessToken(row.id, row.user_id, row.name, _aware(row.expires_at), _aware(row.created_at))


def _user(row: Any, prefix: str = "") -> User:
    """The user in ``row``, whose columns may carry a ``prefix`` (a user joined to something else)."""
    return User(
        id=getattr(row, prefix + "id"),
        name=getattr(row, prefix + "name"),
        email=getattr(row, prefix + "email"),
        role=Role(getattr(row, prefix + "role")),
        created_at=_aware(getattr(row, prefix + "created_at")),
        updated_at=_aware(getattr(row, prefix + "updated_at")),
    )


def _dataset(row: Any) -> Dataset:
    owner = _user(row, prefix="owner_")
    return Dataset(
        id=row.id,
        name=row.name,
        description=row.description,
        owner=owner,
        columns=columns_from_json(row.schema_json),
        row_count=row.row_count + max(0, row.buffered_rows or 0),
        pdp_enabled=bool(row.pdp_enabled),
        created_at=_aware(row.created_at),
        updated_at=_aware(row.updated_at),
        data_updated_at=_aware(row.data_updated_at),
    )
