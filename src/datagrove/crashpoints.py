"""Named points where a crash test can make the real server die (SIGKILL, no cleanup), or pause.

``DATAGROVE_CRASH_AT=<name>`` makes the process kill itself when it reaches that point, and
``<name>#<n>`` the n-th time it does; unset, ``reached`` does nothing. It lets tests crash the server exactly inside the windows that matter
(e.g. between moving a commit's files and the Iceberg commit) instead of hoping a timed kill lands
there. ``DATAGROVE_PAUSE_AT=<name>[#<n>]:<seconds>[,...]`` makes the thread that reaches the point
wait there (each time, or the n-th time), so that a shutdown test can signal the server while a commit or a query is surely under way.
The variables are read when a point is reached, never at import time.
"""

from __future__ import annotations

import collections
import os
import signal
import time

COMMIT_FILES_PLACED = "commit-files-placed"  # files moved into the table, Iceberg commit not yet made
COMMIT_LANDED = "commit-landed"  # Iceberg commit made, execution not yet marked SUCCESS
APPEND_STORED = "append-stored"  # a group commit of appended rows is durable, not yet answered
FOLD_WRITTEN = "fold-written"  # a fold's Parquet file is written, not yet committed
FOLD_COMMITTED = "fold-committed"  # a fold's snapshot landed, its batches not yet forgotten
COMPACTION_PLACED = "compaction-placed"  # compacted files are in the table's directory, not committed
QUERY_STARTING = "query-starting"  # a query over HTTP is checked and about to run


_times_reached: collections.Counter[str] = collections.Counter()


def reached(name: str) -> None:
    pause = os.environ.get("DATAGROVE_PAUSE_AT")
    wanted = os.environ.get("DATAGROVE_CRASH_AT")
    if not pause and not wanted:
        return
    _times_reached[name] += 1
    for wait in pause.split(",") if pause else ():
        where, _, seconds = wait.strip().partition(":")
        if _matches(where, name):
            time.sleep(float(seconds or 1))
    if wanted and _matches(wanted, name, once=True):
        os.kill(os.getpid(), signal.SIGKILL)


def _matches(wanted: str, name: str, *, once: bool = False) -> bool:
    """Whether ``wanted`` (``<name>`` or ``<name>#<n>``) means this reaching of ``name``: the n-th
    time with ``#<n>``, else the first time (``once``) or every time."""
    point, _, nth = wanted.partition("#")
    if point != name:
        return False
    if nth:
        return _times_reached[name] == int(nth)
    return not once or _times_reached[name] == 1
