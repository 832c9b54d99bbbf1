"""Domain records that services pass around. Plain frozen dataclasses: no database or HTTP types."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

from datagrove.tables.types import Column


class Role(enum.StrEnum):
    """Domo's default roles."""

    ADMIN = "Admin"
    PRIVILEGED = "Privileged"
    EDITOR = "Editor"
    PARTICIPANT = "Participant"


ALL_SCOPES = frozenset({"data", "user", "audit", "dashboard", "account", "workflow", "buzz"})


@dataclass(frozen=True)
class User:
    id: int
    name: str
    email: str
    role: Role
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class OAuthClient:
    client_id: str
    secret_hash: str
    user_id: int
    scopes: frozenset[str]
    name: str


@dataclass(frozen=True)
class AccessToken:
    id: int
    user_id: int
    name: str
    expires_at: datetime | None
    created_at: datetime


@dataclass(frozen=True)
class Actor:
    """Who is making a request: a user, and the scopes the credential reaches (None = all)."""

    user: User
    scopes: frozenset[str] | None
    credential: str  # "oauth:<client_id>" or "token:<id>", for logs and the audit trail

    def has_scope(self, scope: str) -> bool:
        return self.scopes is None or scope in self.scopes


class UpdateMethod(enum.StrEnum):
    REPLACE = "REPLACE"
    APPEND = "APPEND"


@dataclass(frozen=True)
class Dataset:
    id: str
    name: str
    description: str
    owner: User
    columns: tuple[Column, ...]
    row_count: int
    pdp_enabled: bool
    created_at: datetime
    updated_at: datetime
    data_updated_at: datetime | None


class ExecutionState(enum.StrEnum):
    ACTIVE = "ACTIVE"
    COMMITTING = "COMMITTING"  # a commit has started; a retried commit resumes it
    SUCCESS = "SUCCESS"
    ERROR = "ERROR"
    ABORTED = "ABORTED"


@dataclass(frozen=True)
class DeletedDataset:
    """What a stream keeps of its dataset once the dataset is deleted (as of the deletion)."""

    name: str
    description: str
    owner_id: int
    deleted_at: datetime


@dataclass(frozen=True)
class Stream:
    id: int
    dataset_id: str
    update_method: UpdateMethod
    created_at: datetime
    modified_at: datetime
    # Set once the dataset is deleted: the stream is then a read-only tombstone until it is deleted.
    deleted_dataset: DeletedDataset | None = None
    # Set for a connector stream (None: a push stream, filled by uploads).
    connector: ConnectorSettings | None = None


@dataclass(frozen=True)
class ConfigEntry:
    """One item of a connector stream's ``configuration``, as Domo names its keys. ``value`` of a
    secret item is sealed in the catalog and only ever shown masked."""

    name: str
    value: str
    type: str = "string"
    category: str = "METADATA"
    secret: bool = False


@dataclass(frozen=True)
class ConnectorSettings:
    """What a connector stream runs: the connector (``dataProvider.key``), its configuration, the
    account holding its credentials, and when it runs."""

    provider_key: str
    transport: dict[str, str]
    configuration: tuple[ConfigEntry, ...]
    account_id: int | None
    #: The user the connector runs as: the account's use and dataset-sql's view of data are theirs.
    run_as_id: int
    #: Normalized ``advancedScheduleJson``; a manual stream's is ``{"type":"MANUAL",...}``.
    schedule: str
    next_run_at: datetime | None


class RunType(enum.StrEnum):
    MANUAL = "MANUAL"
    AUTOMATED = "AUTOMATED"
    RETRY = "RETRY"


@dataclass(frozen=True)
class Execution:
    id: int
    stream_id: int
    state: ExecutionState
    update_method: UpdateMethod
    created_at: datetime
    modified_at: datetime
    ended_at: datetime | None
    commit_key: str | None
    rows: int
    bytes: int
    error: str | None
    run_type: RunType = RunType.MANUAL
    started_by: int | None = None
    #: A connector run (queued until a server process claims it), not a push execution.
    connector_run: bool = False
    retry_count: int = 0
    scheduled_for: datetime | None = None
    error_category: str | None = None
    error_code: str | None = None


class PartState(enum.StrEnum):
    READY = "READY"
    FAILED = "FAILED"


@dataclass(frozen=True)
class Part:
    execution_id: int
    part: int
    state: PartState
    path: str | None
    rows: int
    bytes: int
    checksum: str | None
    error: str | None


class AccessLevel(enum.StrEnum):
    """A principal's level on a dataset, weakest first; ``rank`` orders them."""

    CAN_VIEW = "CAN_VIEW"
    CAN_EDIT = "CAN_EDIT"
    CAN_SHARE = "CAN_SHARE"
    CO_OWNER = "CO_OWNER"
    OWNER = "OWNER"

    @property
    def rank(self) -> int:
        return _LEVEL_RANKS[self]

    @classmethod
    def parse(cls, value: object) -> AccessLevel:
        """Also takes the seed document's ``READ`` (= CAN_VIEW) and ``WRITE`` (= CAN_EDIT)."""
        text = str(value).upper()
        text = {"READ": "CAN_VIEW", "WRITE": "CAN_EDIT", "SHARE": "CAN_SHARE", "COOWNER": "CO_OWNER"}.get(
            text, text
        )
        return cls(text)


_LEVEL_RANKS = {level: rank for rank, level in enumerate(AccessLevel, start=1)}  # asked per request


class PrincipalType(enum.StrEnum):
    USER = "USER"
    GROUP = "GROUP"


@dataclass(frozen=True)
class Grant:
    dataset_id: str
    principal_type: PrincipalType
    principal_id: int
    level: AccessLevel


@dataclass(frozen=True)
class AuditEntry:
    id: int
    time: datetime
    actor_id: int | None
    actor_name: str | None
    action: str
    object_type: str | None
    object_id: str | None
    object_name: str | None
    outcome: str  # "success" or "denied" or "failure"
    detail: str | None
    ip_address: str | None


@dataclass(frozen=True)
class Group:
    """A group of users; ``member_count`` is counted when the group is read."""

    id: int
    name: str
    active: bool
    default: bool
    creator_id: int | None
    member_count: int
    created_at: datetime
    updated_at: datetime


class PolicyType(enum.StrEnum):
    """``user`` and ``system`` policies filter rows; an ``open`` policy shows every row."""

    USER = "user"
    SYSTEM = "system"
    OPEN = "open"


class PolicyOperator(enum.StrEnum):
    EQUALS = "EQUALS"
    NOT_EQUALS = "NOT_EQUALS"
    GREATER_THAN = "GREATER_THAN"
    LESS_THAN = "LESS_THAN"
    GREATER_THAN_EQUAL = "GREATER_THAN_EQUAL"
    LESS_THAN_EQUAL = "LESS_THAN_EQUAL"
    BETWEEN = "BETWEEN"
    LIKE = "LIKE"
    BEGINS_WITH = "BEGINS_WITH"
    ENDS_WITH = "ENDS_WITH"
    CONTAINS = "CONTAINS"


@dataclass(frozen=True)
class PolicyFilter:
    """One condition of a PDP policy; ``values`` are kept as the client sent them (text)."""

    column: str
    operator: PolicyOperator
    values: tuple[str, ...]
    negate: bool = False  # Domo's "not"


@dataclass(frozen=True)
class Policy:
    """A PDP policy: the rows its filters allow (all of them) are visible to its users and groups."""

    id: int
    dataset_id: str
    name: str
    type: PolicyType
    filters: tuple[PolicyFilter, ...]
    users: tuple[int, ...]
    groups: tuple[int, ...]
    virtual_users: tuple[str, ...]
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class Account:
    """Where a connector's credentials live. This record never holds their values: only the names
    of the stored credentials (``credential_keys``), which the API shows with masked values."""

    id: int
    name: str
    type: str
    owner_id: int
    valid: bool
    credential_keys: tuple[str, ...]
    created_at: datetime
    modified_at: datetime


@dataclass(frozen=True)
class AccountGrant:
    """A principal's level on an account: CAN_VIEW (see and use it) or CAN_EDIT (also change it)."""

    account_id: int
    principal_type: PrincipalType
    principal_id: int
    level: AccessLevel
