"""The installed connectors, found through the ``datagrove.connectors`` entry-point group.

Built-ins are registered in Datagrove's own ``pyproject.toml`` exactly as a third-party package
registers its connectors (``key = "package.module:ConnectorClass"``), so both take one path.
Entry points are read once per process; a connector class is loaded and instantiated on first use.
"""

from __future__ import annotations

import functools
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from datagrove.connectors.base import Connector, ConnectorInfo, describe
from datagrove.errors import BadRequest, DatagroveError

ENTRY_POINT_GROUP = "datagrove.connectors"


def connector(key: str) -> Connector:
    """The connector registered as ``key``; ``BadRequest`` listing the known keys otherwise."""
    points = _entry_points()
    if key not in points:
        known = ", ".join(sorted(points)) or "none"
        raise BadRequest(f"unknown connector {key!r}; known connectors: {known}")
    return _load(key)


def connectors() -> list[ConnectorInfo]:
    """Every registered connector, sorted by key."""
    return [describe(connector(key)) for key in sorted(_entry_points())]


@functools.cache
def _entry_points() -> dict[str, EntryPoint]:
    return {point.name: point for point in entry_points(group=ENTRY_POINT_GROUP)}


@functools.cache
def _load(key: str) -> Connector:
    point = _entry_points()[key]
    try:
        loaded: Any = point.load()
    except Exception as exc:  # a broken plug-in must not look like a bad request
        raise DatagroveError(f"connector {key!r} could not be loaded") from exc
    # Connectors are stateless: the class registered is instantiated once.
    instance: Connector = loaded() if isinstance(loaded, type) else loaded
    if getattr(instance, "key", key) != key:
        raise DatagroveError(f"connector {key!r} is registered under another key ({instance.key!r})")
    return instance
