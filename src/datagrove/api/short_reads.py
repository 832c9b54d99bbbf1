"""Running a short service read from an ``async`` route without a thread where that is safe.

A sync route or dependency costs a hop to the thread pool and back (tens of microseconds, more on
a busy machine), which is most of a cached read. On SQLite, reads in WAL mode never wait for a
writer's lock, so a short read (a few rows by key, mostly answered from the catalog's memory) runs
on the event loop. On PostgreSQL every read is a network round trip and goes to the thread pool, so
that a slow database never stalls the other requests. Long reads (large pages, queries) always
go to the thread pool.

The most polled routes (``GET /v1/datasets/{id}``, ``GET /v1/streams``) also call ``current_actor``
in their body instead of declaring it with ``Depends``: FastAPI's solving of a dependency cost more
than the cached lookup it wraps. Only routes whose parameters cannot fail validation do so, so
that a request without a credential is still answered 401 before anything else.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

T = TypeVar("T")


async def short_read(request: Request, read: Callable[..., T], /, **kwargs: Any) -> T:
    if request.app.state.services.auth.reads_on_event_loop:
        return read(**kwargs)
    return await run_in_threadpool(read, **kwargs)
