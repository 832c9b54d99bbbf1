"""Abandoned uploads never fill the disk: idle executions are aborted and their staging reclaimed."""

from __future__ import annotations

import time

from tests.support.server import RunningServer

SCHEMA = {"columns": [{"type": "STRING", "name": "s"}]}


def test_an_idle_execution_is_aborted_and_its_staged_parts_removed(tmp_path):
    server = RunningServer(
        data_dir=tmp_path / "data",
        catalog_url=None,
        extra_env={
            "DATAGROVE_EXECUTION_IDLE_TIMEOUT_SECONDS": "1",
            "DATAGROVE_REAPER_INTERVAL_SECONDS": "0.2",
        },
    ).start()
    try:
        with server.client() as client:
            sid = client.post("/v1/streams", json={"dataSet": {"name": "idle", "schema": SCHEMA}}).json()[
                "id"
            ]
            eid = client.post(f"/v1/streams/{sid}/executions").json()["id"]
            assert client.put(f"/v1/streams/{sid}/executions/{eid}/part/1", content=b"x\n").status_code == 200
            staged = server.data_dir / "staging" / "executions" / str(eid)
            assert any(staged.iterdir())
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline:
                state = client.get(f"/v1/streams/{sid}/executions/{eid}").json()
                if state["currentState"] == "ABORTED":
                    break
                time.sleep(0.2)
            assert state["currentState"] == "ABORTED"
            assert "idle" in state["errorMessage"]
            # The reaper marks the execution aborted first and removes its files right after.
            while staged.exists() and time.monotonic() < deadline:
                time.sleep(0.05)
            assert not staged.exists()
            assert client.put(f"/v1/streams/{sid}/executions/{eid}/commit").status_code == 409
    finally:
        server.stop()
