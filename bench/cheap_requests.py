"""Cheap requests: what a metadata read or a poll costs beside a trivial FastAPI route (issue 14, item 7).

Measured in one run on one machine with ``wrk`` (1 thread, 16 connections, loopback):

* **baseline**: a trivial ``async def`` FastAPI route returning ``{"status": "ok"}``, served by
  uvicorn with the same options as ``datagrove serve`` (uvloop, httptools, no access log), in its own
  process;
* ``GET /health``, and, authenticated with an OAuth bearer token, ``GET /v1/datasets/{id}``,
  ``GET /v1/streams?limit=10`` and an execution poll ``GET /v1/streams/{id}/executions/{eid}``.

Each round measures the baseline and then every endpoint, one after the other, so drift on a shared
machine hits them alike; a figure is the median over the rounds, and the ratio is that median over the
baseline's median. Any answer other than 200 fails the run (wrk counts them). Targets: >= 0.45x for
the dataset GET, >= 0.8x for ``/health``.

Run: ``./dg bench cheap_requests [--seconds 5] [--rounds 3] [--catalog sqlite|postgres] [--record]``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import machine, markdown_table, record_section, text_table, today  # noqa: E402
from tests.support.server import RunningServer, free_port  # noqa: E402

TRIVIAL_APP = textwrap.dedent(
    """
    import sys

    import uvicorn
    from fastapi import FastAPI

    app = FastAPI()


    @app.get("/ping")
    async def ping() -> dict[str, str]:
        return {"status": "ok"}


    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_config=None, access_log=False)
    """
)

TARGETS = {"GET /health": 0.8, "GET /v1/datasets/{id}": 0.45}


@dataclass(frozen=True)
class Figure:
    requests_per_second: float
    mean_latency_ms: float


def wrk(url: str, *, seconds: float, headers: dict[str, str]) -> Figure:
    """One wrk run: 1 thread, 16 connections; fails on any non-2xx answer or socket error."""
    command = ["wrk", "-t1", "-c16", f"-d{seconds:g}s"]
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    out = subprocess.run([*command, url], capture_output=True, text=True, check=True).stdout
    if "Non-2xx" in out or "Socket errors" in out:
        raise RuntimeError(f"wrk saw errors for {url}:\n{out}")
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    value, unit = re.search(r"Latency\s+([\d.]+)(us|ms|s)", out).groups()  # type: ignore[union-attr]
    latency_ms = float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]
    return Figure(rate, latency_ms)


def ensure_wrk() -> None:
    """Debian's wrk, installed when missing (needs root, as CI has)."""
    if shutil.which("wrk"):
        return
    subprocess.run(["apt-get", "update", "-q"], check=True, capture_output=True)
    subprocess.run(["apt-get", "install", "-y", "-q", "wrk"], check=True, capture_output=True)


def start_trivial_app(port: int) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        [sys.executable, "-c", TRIVIAL_APP, str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/ping", timeout=1).status_code == 200:
                return process
        except httpx.HTTPError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("the trivial FastAPI app did not start")


def prepare(server: RunningServer) -> dict[str, str]:
    """A dataset, a stream and an execution to read; returns the paths to measure."""
    with server.client() as client:
        columns = [{"type": "LONG", "name": "n"}, {"type": "STRING", "name": "s"}]
        dataset = client.post("/v1/datasets", json={"name": "cheap", "schema": {"columns": columns}})
        dataset.raise_for_status()
        for n in range(12):  # a full page of ten streams to list
            stream = client.post(
                "/v1/streams", json={"dataSet": {"name": f"s{n}", "schema": {"columns": columns}}}
            )
            stream.raise_for_status()
        stream_id = stream.json()["id"]
        execution = client.post(f"/v1/streams/{stream_id}/executions")
        execution.raise_for_status()
    return {
        "GET /health": "/health",
        "GET /v1/datasets/{id}": f"/v1/datasets/{dataset.json()['id']}",
        "GET /v1/streams?limit=10": "/v1/streams?limit=10",
        "GET /v1/streams/{id}/executions/{eid}": f"/v1/streams/{stream_id}/executions/{execution.json()['id']}",
    }


@contextlib.contextmanager
def catalog(kind: str) -> Iterator[str | None]:
    """The catalog URL for ``kind``: None (the data directory's SQLite) or a private PostgreSQL schema."""
    if kind == "sqlite":
        yield None
        return
    from tests.support.postgres import private_schema

    with private_schema() as url:
        yield url


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--catalog", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--record", action="store_true", help="write the figures to bench/RESULTS.md")
    args = parser.parse_args()
    ensure_wrk()
    load = os.getloadavg()
    figures: dict[str, list[Figure]] = {"baseline": []}
    with tempfile.TemporaryDirectory(prefix="dg-cheap-") as tmp, catalog(args.catalog) as url:
        server = RunningServer(data_dir=Path(tmp) / "data", catalog_url=url).start()
        trivial_port = free_port()
        trivial = start_trivial_app(trivial_port)
        try:
            paths = prepare(server)
            bearer = {"Authorization": f"bearer {server.oauth_token()}"}
            for _ in range(args.rounds):
                figures["baseline"].append(
                    wrk(f"http://127.0.0.1:{trivial_port}/ping", seconds=args.seconds, headers={})
                )
                for name, path in paths.items():
                    headers = {} if name == "GET /health" else bearer
                    figure = wrk(server.base_url + path, seconds=args.seconds, headers=headers)
                    figures.setdefault(name, []).append(figure)
        finally:
            trivial.kill()
            trivial.wait()
            server.stop()
    baseline = statistics.median(f.requests_per_second for f in figures["baseline"])
    rows = []
    for name, runs in figures.items():
        rate = statistics.median(f.requests_per_second for f in runs)
        latency = statistics.median(f.mean_latency_ms for f in runs)
        target = TARGETS.get(name)
        ratio = rate / baseline
        verdict = "" if target is None else ("✓" if ratio >= target else "✗")
        label = "trivial `async def` FastAPI route (baseline)" if name == "baseline" else name
        rows.append(
            (
                label,
                f"{rate:,.0f}",
                f"{latency:.2f}",
                f"{ratio:.2f}×",
                f"≥ {target}×" if target else "",
                verdict,
            )
        )
    headers = ("request", "req/s", "mean latency ms", "÷ baseline", "target", "")
    print(text_table(headers, rows))
    print(f"load average at start: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    if args.record:
        command = (
            f"./dg bench cheap_requests --seconds {args.seconds:g} --rounds {args.rounds} "
            f"--catalog {args.catalog} --record"
        )
        record_section(
            f"Cheap requests ({args.catalog} catalog)",
            f"`{command}` — {today()}, {machine()}; load average at start "
            f"{load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f}.\n\n"
            "`wrk -t1 -c16` on loopback against one `datagrove serve` and, in the same run, a trivial "
            "`async def` FastAPI route under the same uvicorn options; medians of "
            f"{args.rounds} rounds of {args.seconds:g} s, each round measuring the baseline then every "
            "request in turn. Authenticated requests carry an OAuth bearer token.\n\n"
            + markdown_table(headers, rows),
        )


if __name__ == "__main__":
    main()
