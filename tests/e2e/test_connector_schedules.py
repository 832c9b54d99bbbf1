"""Schedules run each occurrence exactly once, on one server and on two sharing a PostgreSQL catalog;
a run whose server is SIGKILLed is marked failed and retried. Time is the scheduler's clock file
(``DATAGROVE_SCHEDULER_CLOCK_FILE``): the tests move it instead of waiting for minutes to pass.
"""

from __future__ import annotations

import base64
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.connector_streams import config, history, new_stream, rows, run, wait_for
from tests.support.postgres import private_schema
from tests.support.server import RunningServer
from tests.support.sources import FileServer, Served

MINUTELY = '{"type": "MINUTE", "interval": 1, "timezone": "UTC"}'


@pytest.fixture(scope="module")
def web() -> Iterator[FileServer]:
    served = FileServer()
    served.files["/tick.csv"] = Served(b"n\n1\n2\n")
    yield served
    served.close()


def settings(clock: Path) -> dict[str, str]:
    return {
        "DATAGROVE_CONNECTOR_ALLOWED_HOSTS": "127.0.0.1",
        "DATAGROVE_SCHEDULER_CLOCK_FILE": str(clock),
        "DATAGROVE_SCHEDULER_INTERVAL_SECONDS": "0.1",
        "DATAGROVE_CONNECTOR_HEARTBEAT_SECONDS": "0.5",
        "DATAGROVE_CONNECTOR_RETRY_BACKOFF_SECONDS": "0.2",
    }


def set_clock(clock: Path, moment: str) -> None:
    """Move the scheduler's clock. Written aside and renamed into place: a node reading a file caught
    half-written takes the real clock, and would schedule the stream's next run months ahead."""
    written = clock.with_suffix(".new")
    written.write_text(moment)
    written.replace(clock)


def automated_runs(client: httpx.Client, stream_id: int) -> list[dict[str, Any]]:
    return [e for e in history(client, stream_id) if e["runType"] == "AUTOMATED"]


def settle(client: httpx.Client, stream_id: int, count: int, *, quiet: float = 1.5) -> list[dict[str, Any]]:
    """Wait until ``count`` scheduled runs exist and have ended, then ``quiet`` seconds more (many
    scheduler ticks of every server) to show that no further run appears."""
    deadline = time.monotonic() + 60
    while True:
        found = automated_runs(client, stream_id)
        if len(found) >= count and all(e["status"] != "running" for e in found):
            break
        assert time.monotonic() < deadline, found
        time.sleep(0.1)
    time.sleep(quiet)
    return automated_runs(client, stream_id)


def test_a_minute_schedule_runs_each_occurrence_once(tmp_path: Path, web: FileServer):
    clock = tmp_path / "clock"
    set_clock(clock, "2026-03-01T10:00:30+00:00")
    server = RunningServer(data_dir=tmp_path / "node", catalog_url=None, extra_env=settings(clock)).start()
    try:
        with server.client() as client:
            stream = new_stream(
                client, "csv", config(url=f"{web.url}/tick.csv"), method="APPEND", schedule=MINUTELY
            )
            found = client.get(f"/api/data/v1/streams/{stream['id']}?fields=all").json()
            assert found["scheduleState"] == "ACTIVE"
            time.sleep(1)
            assert automated_runs(client, stream["id"]) == []  # 10:01 is not due yet
            set_clock(clock, "2026-03-01T10:01:00+00:00")
            assert len(settle(client, stream["id"], 1)) == 1
            set_clock(clock, "2026-03-01T10:01:40+00:00")
            assert len(settle(client, stream["id"], 1, quiet=1)) == 1  # still the 10:01 occurrence
            # Three occurrences missed while nobody looked collapse into one run.
            set_clock(clock, "2026-03-01T10:04:10+00:00")
            ran = settle(client, stream["id"], 2)
            assert len(ran) == 2 and {e["status"] for e in ran} == {"completed"}
            assert rows(client, stream["dataSource"]["id"], "SELECT COUNT(*) AS n FROM table") == [{"n": 4}]
    finally:
        server.stop()


def test_two_servers_on_one_catalog_never_run_an_occurrence_twice(tmp_path: Path, web: FileServer):
    clock = tmp_path / "clock"
    set_clock(clock, "2026-03-01T10:00:30+00:00")
    shared = {**settings(clock), "DATAGROVE_SECRET_KEY": base64.b64encode(os.urandom(32)).decode()}
    with private_schema() as catalog_url:
        first = RunningServer(data_dir=tmp_path / "a", catalog_url=catalog_url, extra_env=shared).start()
        second = RunningServer(
            data_dir=tmp_path / "b",
            catalog_url=catalog_url,
            extra_env=shared,
            client_id=first.client_id,
            client_secret=first.client_secret,
            token=first.token,
        ).start()
        try:
            with first.client() as client:
                streams = [
                    new_stream(
                        client, "csv", config(url=f"{web.url}/tick.csv"), method="APPEND", schedule=MINUTELY
                    )
                    for _ in range(3)
                ]
                for minute in ("10:01:00", "10:02:00", "10:03:00"):
                    set_clock(clock, f"2026-03-01T{minute}+00:00")
                    expected = int(minute[3:5])
                    for stream in streams:
                        assert len(settle(client, stream["id"], expected, quiet=0.3)) == expected
                time.sleep(1)
                for stream in streams:
                    ran = automated_runs(client, stream["id"])
                    assert len(ran) == 3, ran
                    assert rows(client, stream["dataSource"]["id"], "SELECT COUNT(*) AS n FROM table") == [
                        {"n": 6}
                    ]
            with second.client() as client:
                assert len(automated_runs(client, streams[0]["id"])) == 3
        finally:
            second.stop()
            first.stop()


def test_a_run_whose_server_is_killed_is_marked_failed_and_retried(tmp_path: Path):
    web = FileServer()
    body = b"n\n" + b"".join(b"%d\n" % i for i in range(200_000))
    web.files["/slow.csv"] = Served(body, trickle=0.05)
    clock = tmp_path / "clock"
    set_clock(clock, "2026-03-01T10:00:00+00:00")
    server = RunningServer(data_dir=tmp_path / "node", catalog_url=None, extra_env=settings(clock)).start()
    try:
        with server.client() as client:
            stream = new_stream(client, "csv", config(url=f"{web.url}/slow.csv"))
            started = run(client, stream["id"], wait=False)
            deadline = time.monotonic() + 30
            while not web.requests:  # the run is reading the source
                assert time.monotonic() < deadline
                time.sleep(0.05)
        server.kill()
        web.files["/slow.csv"] = Served(body)  # the source is quick again for the retry
        server.start()
        with server.client() as client:
            died = wait_for(client, stream["id"], started["executionId"])
            assert died["currentState"] == "ERROR"
            assert died["errors"][0]["code"] == "runner_died"
            deadline = time.monotonic() + 60
            while True:
                entries = history(client, stream["id"])
                if entries[0]["executionId"] != started["executionId"] and entries[0]["status"] != "running":
                    break
                assert time.monotonic() < deadline, entries
                time.sleep(0.1)
            retry = entries[0]
            assert retry["runType"] == "RETRY" and retry["status"] == "completed", retry
            assert rows(client, stream["dataSource"]["id"], "SELECT COUNT(*) AS n FROM table") == [
                {"n": 200_000}
            ]
            assert [e["status"] for e in entries] == ["completed", "failed"]
    finally:
        server.stop()
        web.close()
