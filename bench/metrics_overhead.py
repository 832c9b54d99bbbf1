"""What recording the per-request metrics costs: request throughput of a server as shipped against
the same server with the per-request metrics call made a no-op, measured in the same run.

Every request goes through ``RequestLog``, which counts it and observes its latency by route
template (``datagrove.metrics.request_served``); the other metrics are recorded where work is done
(a commit, a query), far from the hot path. The baseline server is started with a
``sitecustomize`` that replaces ``request_served`` with a function that does nothing, so the two
differ in exactly that call. Two endpoints: ``GET /health`` (the cheapest request, where a fixed
cost shows most) and an authenticated ``GET /v1/datasets/{id}``. Rounds alternate between the two
servers so drift on this shared machine hits both alike; req/s are medians of the rounds, and the
ratio is the median of each round's ratio (its two figures taken back to back).
Before any figure is printed, the baseline is checked to have recorded nothing and the measured
server to have counted every answered request. Loopback only, bounded by ``--seconds``.

    .venv/bin/python bench/metrics_overhead.py               # ~1 minute, recorded in RESULTS.md
    .venv/bin/python bench/metrics_overhead.py --no-record --seconds 2 --rounds 1
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import machine, markdown_table, record_section, running_server, text_table, today  # noqa: E402
from bench.loadgen import Outcome, percentile, request_bytes, run_load  # noqa: E402
from tests.support.server import RunningServer  # noqa: E402

HEADING = "Metrics overhead per request (issue 14)"
NO_METRICS = "import datagrove.metrics as m\nm.request_served = lambda *args, **kwargs: None\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=1.5, help="load per endpoint, server and round")
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--record", action=argparse.BooleanOptionalAction, default=True)
    args = parser.parse_args()

    load = os.getloadavg()[0]
    with ExitStack() as stack:
        scratch = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="dg-bench-metrics-")))
        hook = scratch / "no-metrics"
        hook.mkdir()
        (hook / "sitecustomize.py").write_text(NO_METRICS)
        path = os.pathsep.join(p for p in (str(hook), os.environ.get("PYTHONPATH", "")) if p)
        servers = {
            "with metrics": stack.enter_context(running_server(scratch / "with")),
            "without (baseline)": stack.enter_context(running_server(scratch / "without", PYTHONPATH=path)),
        }
        datasets = {name: new_dataset(server) for name, server in servers.items()}
        endpoints: dict[str, Callable[[RunningServer, str], bytes]] = {
            "GET /health": lambda server, _dataset: request_bytes(
                "GET", "/health", host=server.host, headers={}
            ),
            "GET /v1/datasets/{id}": lambda server, dataset: request_bytes(
                "GET",
                f"/v1/datasets/{dataset}",
                host=server.host,
                headers={"X-DOMO-Developer-Token": server.token},
            ),
        }
        rates: dict[tuple[str, str], list[float]] = {}
        p50s: dict[tuple[str, str], list[float]] = {}
        answered: dict[str, int] = dict.fromkeys(servers, 0)
        # Warm-up, not measured: the first requests pay for imports, pools and the background warm-up.
        for endpoint, make in endpoints.items():
            for name, server in servers.items():
                load_for(server, make(server, datasets[name]), connections=args.connections, seconds=2)
        counted_before = {name: counted(server) for name, server in servers.items()}
        for round_number in range(args.rounds):
            for endpoint, make in endpoints.items():
                order = list(servers.items())
                for name, server in order if round_number % 2 == 0 else reversed(order):
                    outcome = load_for(
                        server,
                        make(server, datasets[name]),
                        connections=args.connections,
                        seconds=args.seconds,
                    )
                    ok = outcome.statuses.get(200, 0)
                    if ok != sum(outcome.statuses.values()) or outcome.errors or outcome.unanswered:
                        raise SystemExit(f"{name} {endpoint}: {outcome.statuses} {outcome.errors[:3]}")
                    answered[name] += ok
                    rates.setdefault((endpoint, name), []).append(ok / args.seconds)
                    p50s.setdefault((endpoint, name), []).append(percentile(outcome.latencies, 0.5) * 1000)
        # The baseline must really have recorded nothing, and the measured server every request.
        moved = {name: counted(server) - counted_before[name] for name, server in servers.items()}
        if moved["without (baseline)"] != 0 or moved["with metrics"] < answered["with metrics"]:
            raise SystemExit(f"metrics counted {moved}, answered {answered}: the comparison is not sound")

    headers = [
        "endpoint",
        "with metrics req/s",
        "without req/s",
        "ratio (median of rounds)",
        "rounds' ratios, min–max",
        "p50 ms with",
        "p50 ms without",
    ]
    rows = []
    for endpoint in endpoints:
        with_rates = rates[(endpoint, "with metrics")]
        without_rates = rates[(endpoint, "without (baseline)")]
        # Each round's two figures were taken back to back: their ratio is the least drift-prone.
        ratios = [w / b for w, b in zip(with_rates, without_rates, strict=True)]
        ratio = statistics.median(ratios)
        rows.append(
            [
                endpoint,
                f"{statistics.median(with_rates):,.0f}",
                f"{statistics.median(without_rates):,.0f}",
                f"{ratio:.3f}x",
                f"{min(ratios):.2f}–{max(ratios):.2f}",
                f"{statistics.median(p50s[(endpoint, 'with metrics')]):.1f}",
                f"{statistics.median(p50s[(endpoint, 'without (baseline)')]):.1f}",
            ]
        )
    call_us = cost_of_one_call()
    print(text_table(headers, rows))
    print(f"metrics.request_served in-process: {call_us:.2f} us per call")
    if args.record:
        body = "\n".join(
            [
                "```sh",
                f".venv/bin/python bench/metrics_overhead.py --seconds {args.seconds:g} --rounds {args.rounds}"
                f" --connections {args.connections}",
                "```",
                "",
                f"{today()}; {machine()}; load average {load:.2f} at the start. One server process each, "
                f"SQLite catalog, {args.connections} keep-alive connections from `bench/loadgen.py` on "
                f"the same machine, {args.seconds:g} s per endpoint, server and round, rounds alternating "
                "between the servers (in turn first), after a 2 s warm-up of each; req/s are medians of "
                f"{args.rounds} rounds, the ratio the median of each round's with/without ratio. The "
                "baseline is the same code with "
                "`metrics.request_served` (counter + histogram by route template) made a no-op; it was "
                "checked to count nothing, and the measured server to count every request.",
                "",
                markdown_table(headers, rows),
                "",
                f"In-process, one `metrics.request_served` call (a counter and a histogram by route "
                f"template) costs {call_us:.2f} µs (median of 5 × 100,000 calls).",
            ]
        )
        record_section(HEADING, body)


def load_for(server: RunningServer, payload: bytes, *, connections: int, seconds: float) -> Outcome:
    return asyncio.run(
        run_load(
            port=server.port,
            connections=connections,
            seconds=seconds,
            make_request=lambda _client, _n: payload,
        )
    )


def cost_of_one_call() -> float:
    """Microseconds per ``request_served`` call with a real route, median of five timed loops."""
    from datagrove import metrics

    class Route:
        path = "/v1/datasets/{dataset_id}"

    scope = {"method": "GET", "route": Route()}
    runs = []
    for _ in range(5):
        started = time.perf_counter()
        for _ in range(100_000):
            metrics.request_served(scope, 200, 0.004)
        runs.append((time.perf_counter() - started) * 1e6 / 100_000)
    return statistics.median(runs)


def new_dataset(server: RunningServer) -> str:
    with server.client() as client:
        body = {
            "name": "bench-" + uuid.uuid4().hex[:8],
            "schema": {"columns": [{"name": "n", "type": "LONG"}]},
        }
        response = client.post("/v1/datasets", json=body)
        response.raise_for_status()
        return str(response.json()["id"])


def counted(server: RunningServer) -> float:
    """Requests the server's metrics have counted so far (every route and status)."""
    text = httpx.get(f"{server.base_url}/metrics", timeout=30).text
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        if family.name == "datagrove_http_requests"
        for sample in family.samples
        if sample.name == "datagrove_http_requests_total"
    )


if __name__ == "__main__":
    main()
