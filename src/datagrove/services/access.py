"""The one place that decides who may do what to which dataset.

``decide(actor, action, dataset)`` returns a ``Decision`` with a reason; ``require`` turns a
refusal into an error. A dataset the actor may not even view answers 404, never 403, so that
its existence does not leak. Routes and services call ``require``; nothing re-implements checks.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from datagrove.domain import Actor, Dataset, Role
from datagrove.errors import Forbidden, NotFound


class Action(enum.StrEnum):
    CREATE_DATASET = "create_dataset"
    LIST = "list_datasets"
    VIEW = "view"  # metadata, export, query
    EDIT = "edit"  # import, update metadata and schema
    DELETE = "delete"


DATASET_CREATORS = frozenset({Role.ADMIN, Role.PRIVILEGED, Role.EDITOR})


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str


def decide(actor: Actor, action: Action, dataset: Dataset | None = None) -> Decision:
    if not actor.has_scope("data"):
        return Decision(False, "the token lacks the 'data' scope")
    if action is Action.LIST:
        return Decision(True, "anyone with the 'data' scope may list the datasets they can view")
    if action is Action.CREATE_DATASET:
        if actor.user.role in DATASET_CREATORS:
            return Decision(True, f"role {actor.user.role} may create datasets")
        return Decision(False, f"role {actor.user.role} may not create datasets")
    if dataset is None:
        raise ValueError(f"{action} needs a dataset")
    if actor.user.role is Role.ADMIN:
        return Decision(True, "admins may do anything")
    if dataset.owner.id == actor.user.id:
        return Decision(True, "owner")
    return Decision(False, "no access to this dataset")


def require(actor: Actor, action: Action, dataset: Dataset | None = None) -> None:
    decision = decide(actor, action, dataset)
    if decision.allowed:
        return
    if dataset is not None and not decide(actor, Action.VIEW, dataset).allowed:
        raise NotFound(f"dataset {dataset.id} does not exist")
    raise Forbidden(decision.reason)


def can_view(actor: Actor, dataset: Dataset) -> bool:
    return decide(actor, Action.VIEW, dataset).allowed
