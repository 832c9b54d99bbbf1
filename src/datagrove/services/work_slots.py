"""How much heavy work one server process takes on at once: queries and uploads, per user and in all.

A query holds a DuckDB database, threads and up to its memory limit until its answer is sent; an
upload holds a connection, a staging file and, while it is converted, a core. Each takes a *slot*
for as long as it runs; with none free (the user's own, or the process's), the request is refused
at once with 429, naming the limit and when to retry, rather than queued: a queue would only hold
the client's connection while the process is already at its capacity, and clients retry well.

Slots are counted per server process, in memory, deliberately: what they protect is the process's
memory, threads and file descriptors, and a deployment of many nodes behind a load balancer has each
node protect itself (a user's total across the nodes is up to the per-user limit times the nodes).
Counting in the catalog would cost a round trip per request and would leave slots behind when a
process died holding them.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import Enum

from datagrove.errors import TooManyRequests


class Work(Enum):
    QUERY = "query"
    UPLOAD = "upload"


@dataclass(frozen=True)
class SlotLimit:
    """At most ``per_user`` of one user's and ``total`` of all; the settings' names for refusals."""

    per_user: int
    total: int
    per_user_setting: str
    total_setting: str


class Slot:
    """One running piece of work; ``release`` (idempotent, any thread) frees it."""

    def __init__(self, slots: WorkSlots, work: Work, user_id: int) -> None:
        self._slots = slots
        self._work = work
        self._user_id = user_id
        self._released = False

    def release(self) -> None:
        self._slots._free(self)


class WorkSlots:
    """Slots for each kind of work in this process (see the module's docstring)."""

    def __init__(self, limits: dict[Work, SlotLimit], *, retry_after_seconds: int) -> None:
        self._limits = limits
        self._retry_after = retry_after_seconds
        self._lock = threading.Lock()
        self._total = dict.fromkeys(limits, 0)
        self._per_user: dict[Work, dict[int, int]] = {work: {} for work in limits}

    def take(self, work: Work, user_id: int) -> Slot:
        """A slot for ``work`` by ``user_id``; ``TooManyRequests`` naming the limit when none is free."""
        limit = self._limits[work]
        with self._lock:
            users = self._per_user[work]
            held = users.get(user_id, 0)
            if held >= limit.per_user:
                refused = (limit.per_user_setting, limit.per_user, f"you are running {held}")
            elif self._total[work] >= limit.total:
                refused = (limit.total_setting, limit.total, "the server is running that many")
            else:
                users[user_id] = held + 1
                self._total[work] += 1
                return Slot(self, work, user_id)
        setting, count, why = refused
        raise TooManyRequests(
            f"too many {work.value}s at once: {why} (limit {setting}: {count}); "
            f"try again in {self._retry_after} seconds",
            limit=setting,
            retryAfterSeconds=self._retry_after,
        )

    @contextmanager
    def holding(self, work: Work, user_id: int) -> Iterator[Slot]:
        """A slot held for the ``with`` block."""
        slot = self.take(work, user_id)
        try:
            yield slot
        finally:
            slot.release()

    def in_use(self, work: Work, user_id: int | None = None) -> int:
        """Slots of ``work`` held now (by ``user_id``, or by everyone)."""
        with self._lock:
            if user_id is None:
                return self._total[work]
            return self._per_user[work].get(user_id, 0)

    def _free(self, slot: Slot) -> None:
        with self._lock:
            if slot._released:
                return
            slot._released = True
            users = self._per_user[slot._work]
            left = users[slot._user_id] - 1
            if left:
                users[slot._user_id] = left
            else:
                del users[slot._user_id]  # the map holds only users with work running
            self._total[slot._work] -= 1
