"""SQL conditions for "what may this user see", shared by every catalog query that lists things."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from datagrove.catalog import schema as t
from datagrove.domain import PrincipalType


def user_groups_query(user_id: int) -> sa.Select[Any]:
    """Ids of the active groups ``user_id`` belongs to."""
    return (
        sa.select(t.group_members.c.group_id)
        .join(t.groups, t.groups.c.id == t.group_members.c.group_id)
        .where(t.group_members.c.user_id == user_id, t.groups.c.active.is_(True))
    )


def grants_reaching(user_id: int) -> Any:
    """SQL condition on ``dg_dataset_permissions``: the grant is to the user or one of its active groups."""
    p = t.dataset_permissions
    return sa.or_(
        sa.and_(p.c.principal_type == PrincipalType.USER.value, p.c.principal_id == user_id),
        sa.and_(
            p.c.principal_type == PrincipalType.GROUP.value, p.c.principal_id.in_(user_groups_query(user_id))
        ),
    )


def visible_datasets(user_id: int) -> Any:
    """SQL condition on ``dg_datasets``: some grant reaches the user."""
    p = t.dataset_permissions
    return sa.exists(
        sa.select(p.c.dataset_id).where(p.c.dataset_id == t.datasets.c.id, grants_reaching(user_id))
    )
