"""Driving connector streams over HTTP in tests: accounts, streams, runs, and what the dataset holds."""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx

TERMINAL = ("SUCCESS", "ERROR")


def new_account(client: httpx.Client, kind: str, credentials: dict[str, str]) -> str:
    created = client.post(
        "/v1/accounts",
        json={
            "name": f"{kind}-{uuid.uuid4().hex[:6]}",
            "valid": True,
            "type": {"id": kind, "properties": credentials},
        },
    )
    assert created.status_code in (200, 201), created.text
    return str(created.json()["id"])


def config(**items: str) -> list[dict[str, str]]:
    return [
        {"name": name, "value": value, "type": "string", "category": "METADATA"}
        for name, value in items.items()
    ]


def new_stream(
    client: httpx.Client,
    provider: str,
    configuration: list[dict[str, str]],
    *,
    account: str | None = None,
    method: str = "REPLACE",
    schedule: str = '{"type": "MANUAL", "timezone": "UTC"}',
    expect: int = 201,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "transport": {"type": "CONNECTOR", "description": f"com.example.{provider}", "version": "1"},
        "configuration": configuration,
        "updateMethod": method,
        "dataProvider": {"key": provider},
        "dataSource": {"name": f"{provider}-{uuid.uuid4().hex[:8]}", "description": "a connector test"},
        "advancedScheduleJson": schedule,
    }
    if account is not None:
        body["account"] = {"id": account}
    created = client.post("/api/data/v1/streams", json=body)
    assert created.status_code == expect, created.text
    return created.json()


def run(client: httpx.Client, stream_id: int, *, wait: bool = True, timeout: float = 120) -> dict[str, Any]:
    """Start a run (the seed's body) and, with ``wait``, poll until it ends; the ended execution."""
    started = client.post(f"/api/data/v1/streams/{stream_id}/executions", json={"action": "Manual"})
    assert started.status_code == 200, started.text
    execution = started.json()
    assert execution["status"] == "started" and execution["currentState"] == "ACTIVE"
    return wait_for(client, stream_id, execution["executionId"], timeout=timeout) if wait else execution


def wait_for(
    client: httpx.Client, stream_id: int, execution_id: int, *, timeout: float = 120
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        found = client.get(f"/api/data/v1/streams/{stream_id}/executions/{execution_id}")
        assert found.status_code == 200, found.text
        if found.json()["currentState"] in TERMINAL:
            return found.json()
        assert time.monotonic() < deadline, f"execution {execution_id} still {found.json()['currentState']}"
        time.sleep(0.1)


def rows(client: httpx.Client, dataset_id: str, sql: str = "SELECT * FROM table") -> list[dict[str, Any]]:
    answer = client.post(f"/api/query/v1/execute/{dataset_id}", json={"sql": sql})
    assert answer.status_code == 200, answer.text
    return answer.json()


def history(client: httpx.Client, stream_id: int) -> list[dict[str, Any]]:
    found = client.get(f"/api/data/v1/streams/{stream_id}/history/aggregate")
    assert found.status_code == 200, found.text
    return found.json()
