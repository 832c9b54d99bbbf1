"""Soak: 32 clients for 10 minutes of mixed work against one server on loopback (issue 14).

Each client loops over a weighted, seeded mix of what real clients do:

* ``token``: an OAuth client-credentials grant (``POST /oauth/token``);
* ``stream``: one APPEND execution of two gzip CSV parts uploaded in parallel, then its commit, into
  the client's own stream dataset;
* ``import``: ``PUT /v1/datasets/{id}/data`` replacing the client's import dataset;
* ``query``: an aggregate over one of the client's datasets (``POST /v1/datasets/query/execute``);
* ``export``: ``GET /v1/datasets/{id}/data`` of one of the client's datasets, read to the end;
* ``append``: a one-row append (``POST /api/data/v3/datasources/{id}/uploads``) to one shared dataset;
* ``poll``: ``GET /v1/datasets/{id}`` (metadata, what pollers do most).

Every answer is counted by operation and status; a 429 is a limit doing its job (the client waits
``Retry-After`` and goes on) and is reported apart; any 5xx or transport error is an error (target 0).
At the end the rows are checked: each stream dataset holds exactly the rows of its acknowledged
commits, each import dataset exactly its last acknowledged import, the append dataset exactly the
acknowledged appends, each once (target: 0 lost, 0 doubled).

Every 10 s the server's resident memory and open file descriptors are sampled from ``/proc``; the
report compares the second half of the run with the first half after warm-up (target: flat, no leak).

    ./dg bench soak [--clients 32] [--minutes 10] [--seed 1] [--record/--no-record]
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import os
import random
import statistics
import sys
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import machine, markdown_table, record_section, running_server, text_table, today  # noqa: E402
from bench.loadgen import percentile  # noqa: E402

HEADING = "Soak: 32 clients, mixed load, 10 minutes (issue 14)"
SCHEMA = {"columns": [{"type": "LONG", "name": "n"}, {"type": "STRING", "name": "label"}]}
WEIGHTS = {"poll": 20, "query": 20, "append": 20, "token": 10, "export": 10, "stream": 12, "import": 8}
PART_ROWS = 500  # rows per stream part; two parts per execution
IMPORT_ROWS = 1_000
SAMPLE_SECONDS = 10.0
WARM_UP_SECONDS = 60.0

Sample = tuple[float, float, int]  # seconds since the start, RSS in MB, open file descriptors


@dataclass
class Client:
    """One simulated client: its datasets and what the server acknowledged for them."""

    index: int
    stream_id: int = 0
    stream_dataset: str = ""
    import_dataset: str = ""
    committed_rows: int = 0
    committed_sum: int = 0
    imported: tuple[int, int] | None = None  # (rows, sum of n) of the last acknowledged import
    next_n: int = 0

    def numbers(self, count: int) -> range:
        """Fresh values of ``n``, unique over the whole run (client index in the high digits)."""
        start = self.index * 1_000_000_000 + self.next_n
        self.next_n += count
        return range(start, start + count)


@dataclass
class Tally:
    statuses: dict[str, Counter[int]] = field(default_factory=lambda: defaultdict(Counter))
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: list[str] = field(default_factory=list)
    appended: set[int] = field(default_factory=set)

    def record(self, op: str, status: int, seconds: float) -> None:
        self.statuses[op][status] += 1
        if status < 300:
            self.latencies[op].append(seconds)


def csv_rows(numbers: range) -> bytes:
    return "".join(f"{n},row {n}\n" for n in numbers).encode()


class Soak:
    def __init__(self, server_url: str, token: str, credentials: tuple[str, str], seed: int) -> None:
        self.url = server_url
        self.headers = {"X-DOMO-Developer-Token": token}
        self.credentials = credentials
        self.random = random.Random(seed)
        self.tally = Tally()
        self.append_dataset = ""

    async def setup(self, http: httpx.AsyncClient, clients: list[Client]) -> None:
        answer = await http.post("/v1/datasets", json={"name": "soak appends", "schema": SCHEMA})
        answer.raise_for_status()
        self.append_dataset = answer.json()["id"]
        for client in clients:
            stream = await http.post(
                "/v1/streams",
                json={
                    "dataSet": {"name": f"soak stream {client.index}", "schema": SCHEMA},
                    "updateMethod": "APPEND",
                },
            )
            stream.raise_for_status()
            client.stream_id, client.stream_dataset = stream.json()["id"], stream.json()["dataSet"]["id"]
            imported = await http.post(
                "/v1/datasets", json={"name": f"soak import {client.index}", "schema": SCHEMA}
            )
            imported.raise_for_status()
            client.import_dataset = imported.json()["id"]

    async def run_client(self, http: httpx.AsyncClient, client: Client, deadline: float) -> None:
        ops, weights = list(WEIGHTS), list(WEIGHTS.values())
        rng = random.Random(self.random.random())
        while time.monotonic() < deadline:
            op = rng.choices(ops, weights)[0]
            started = time.perf_counter()
            try:
                status = await getattr(self, f"op_{op}")(http, client, rng)
            except httpx.HTTPError as exc:
                self.tally.errors.append(f"{op}: {type(exc).__name__}: {exc}")
                self.tally.record(op, 0, 0.0)
                continue
            self.tally.record(op, status, time.perf_counter() - started)
            if status >= 500:
                self.tally.errors.append(f"{op}: HTTP {status}")

    async def _limited(self, response: httpx.Response) -> int:
        """A 429 means wait as told (bounded) and go on."""
        if response.status_code == 429:
            await asyncio.sleep(min(float(response.headers.get("retry-after", "1")), 5.0))
        return response.status_code

    async def op_poll(self, http: httpx.AsyncClient, client: Client, rng: random.Random) -> int:
        dataset = rng.choice([client.stream_dataset, client.import_dataset])
        return await self._limited(await http.get(f"/v1/datasets/{dataset}"))

    async def op_token(self, http: httpx.AsyncClient, client: Client, rng: random.Random) -> int:
        answer = await http.post(
            "/oauth/token",
            data={"grant_type": "client_credentials", "scope": "data"},
            auth=self.credentials,
        )
        return await self._limited(answer)

    async def op_query(self, http: httpx.AsyncClient, client: Client, rng: random.Random) -> int:
        dataset = rng.choice([client.stream_dataset, client.import_dataset, self.append_dataset])
        answer = await http.post(
            f"/v1/datasets/query/execute/{dataset}",
            json={"sql": "SELECT COUNT(*), SUM(n), MAX(label) FROM table"},
        )
        return await self._limited(answer)

    async def op_export(self, http: httpx.AsyncClient, client: Client, rng: random.Random) -> int:
        dataset = rng.choice([client.stream_dataset, client.import_dataset])
        async with http.stream(
            "GET", f"/v1/datasets/{dataset}/data", params={"includeHeader": "true"}
        ) as answer:
            async for _chunk in answer.aiter_bytes():
                pass
            return await self._limited(answer)

    async def op_append(self, http: httpx.AsyncClient, client: Client, rng: random.Random) -> int:
        (n,) = client.numbers(1)
        answer = await http.post(
            f"/api/data/v3/datasources/{self.append_dataset}/uploads",
            json={"values": f"{n},append {n}", "delimiter": ","},
        )
        if answer.status_code == 200:
            self.tally.appended.add(n)
        return await self._limited(answer)

    async def op_import(self, http: httpx.AsyncClient, client: Client, rng: random.Random) -> int:
        numbers = client.numbers(IMPORT_ROWS)
        answer = await http.put(
            f"/v1/datasets/{client.import_dataset}/data",
            content=csv_rows(numbers),
            headers={"Content-Type": "text/csv"},
        )
        if answer.status_code < 300:
            client.imported = (len(numbers), sum(numbers))
        return await self._limited(answer)

    async def op_stream(self, http: httpx.AsyncClient, client: Client, rng: random.Random) -> int:
        base = f"/v1/streams/{client.stream_id}/executions"
        created = await http.post(base)
        if created.status_code >= 300:
            return await self._limited(created)
        execution = created.json()["id"]
        parts = [client.numbers(PART_ROWS) for _ in range(2)]

        async def upload(index: int, numbers: range) -> httpx.Response:
            return await http.put(
                f"{base}/{execution}/part/{index}",
                content=gzip.compress(csv_rows(numbers), compresslevel=1),
                headers={"Content-Type": "text/csv", "Content-Encoding": "gzip"},
            )

        uploads = await asyncio.gather(*(upload(i + 1, numbers) for i, numbers in enumerate(parts)))
        failed = [u for u in uploads if u.status_code >= 300]
        if failed:
            await http.put(f"{base}/{execution}/abort")
            return await self._limited(failed[0])
        committed = await http.put(f"{base}/{execution}/commit")
        if committed.status_code < 300:
            client.committed_rows += sum(len(p) for p in parts)
            client.committed_sum += sum(sum(p) for p in parts)
        return await self._limited(committed)

    async def count_and_sum(self, http: httpx.AsyncClient, dataset: str) -> tuple[int, int, int]:
        answer = await http.post(
            f"/v1/datasets/query/execute/{dataset}",
            json={"sql": "SELECT COUNT(*), COUNT(DISTINCT n), COALESCE(SUM(n), 0) FROM table"},
        )
        answer.raise_for_status()
        count, distinct, total = answer.json()["rows"][0]
        return int(count), int(distinct), int(total)

    async def verify(self, http: httpx.AsyncClient, clients: list[Client]) -> list[str]:
        """Every acknowledged row is there exactly once; nothing else is."""
        problems = []
        for client in clients:
            found = await self.count_and_sum(http, client.stream_dataset)
            expected = (client.committed_rows, client.committed_rows, client.committed_sum)
            if found != expected:
                problems.append(f"stream dataset of client {client.index}: {found} != {expected}")
            if client.imported is not None:
                found = await self.count_and_sum(http, client.import_dataset)
                rows, total = client.imported
                if found != (rows, rows, total):
                    problems.append(
                        f"import dataset of client {client.index}: {found} != {(rows, rows, total)}"
                    )
        found = await self.count_and_sum(http, self.append_dataset)
        appended = len(self.tally.appended)
        if found != (appended, appended, sum(self.tally.appended)):
            problems.append(f"append dataset: {found} != {(appended, appended, sum(self.tally.appended))}")
        return problems


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def sample(pid: int, started: float, deadline: float, into: list[Sample]) -> None:
    while time.monotonic() < deadline:
        into.append((time.monotonic() - started, rss_mb(pid), open_fds(pid)))
        await asyncio.sleep(SAMPLE_SECONDS)


async def soak(
    server_url: str, pid: int, token: str, credentials: tuple[str, str], args: argparse.Namespace
) -> tuple[Tally, list[Sample], float, list[str]]:
    limits = httpx.Limits(max_connections=args.clients * 3, max_keepalive_connections=args.clients * 3)
    async with httpx.AsyncClient(
        base_url=server_url, headers={"X-DOMO-Developer-Token": token}, timeout=300, limits=limits
    ) as http:
        runner = Soak(server_url, token, credentials, args.seed)
        clients = [Client(index=i + 1) for i in range(args.clients)]
        await runner.setup(http, clients)
        samples: list[Sample] = []
        started = time.monotonic()
        deadline = started + args.minutes * 60
        await asyncio.gather(
            sample(pid, started, deadline, samples),
            *(runner.run_client(http, client, deadline) for client in clients),
        )
        elapsed = time.monotonic() - started
        samples.append((elapsed, rss_mb(pid), open_fds(pid)))
        await asyncio.sleep(5)  # let the append buffer fold (queries see it either way)
        problems = await runner.verify(http, clients)
        return runner.tally, samples, elapsed, problems


def drift(samples: list[Sample], index: int) -> tuple[float, float]:
    """Mean of the first and the second half of the samples after warm-up."""
    after = [s[index] for s in samples if s[0] >= WARM_UP_SECONDS] or [s[index] for s in samples]
    half = max(1, len(after) // 2)
    return statistics.mean(after[:half]), statistics.mean(after[half:] or after[:half])


def report(
    tally: Tally, samples: list[Sample], elapsed: float, problems: list[str], args: argparse.Namespace
) -> tuple[str, str]:
    rows = []
    for op in WEIGHTS:
        statuses = tally.statuses.get(op, Counter())
        ok = sum(c for s, c in statuses.items() if 0 < s < 300)
        limited = statuses.get(429, 0)
        errors = sum(c for s, c in statuses.items() if s >= 500 or s == 0)
        other = sum(statuses.values()) - ok - limited - errors
        lat = tally.latencies.get(op, [])
        rows.append(
            [
                op,
                ok,
                f"{ok / elapsed:.1f}",
                f"{percentile(lat, 0.5) * 1000:.0f}",
                f"{percentile(lat, 0.95) * 1000:.0f}",
                f"{percentile(lat, 0.99) * 1000:.0f}",
                limited,
                other,
                errors,
            ]
        )
    headers = ["operation", "ok", "per s", "p50 ms", "p95 ms", "p99 ms", "429", "other 4xx", "5xx/failed"]
    rss_first, rss_second = drift(samples, 1)
    fd_first, fd_second = drift(samples, 2)
    series = ", ".join(f"{t:.0f}s {m:.0f}MB/{f}fd" for t, m, f in samples)
    lines = [
        f"Run {today()}: `./dg bench soak --clients {args.clients} --minutes {args.minutes} --seed {args.seed}`"
        f" — one server (SQLite catalog, local directory), the driver in the same machine; {machine()}.",
        "",
        markdown_table(headers, rows),
        "",
        f"- 5xx or transport errors: **{len(tally.errors)}**"
        + (f" (first: {tally.errors[:3]})" if tally.errors else ""),
        f"- rows checked at the end: **{'0 lost, 0 doubled' if not problems else '; '.join(problems)}**"
        f" ({len(tally.appended)} appends, every commit and last import of {args.clients} clients)",
        f"- server memory (RSS) after warm-up, first half vs second half: {rss_first:.0f} MB → {rss_second:.0f} MB"
        f" ({rss_second / rss_first:.2f}×); open fds {fd_first:.0f} → {fd_second:.0f}",
        f"- samples every {SAMPLE_SECONDS:.0f} s (time, RSS, fds): {series}",
    ]
    return "\n".join(lines), text_table(headers, rows)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--record", action=argparse.BooleanOptionalAction, default=True)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="dg-soak-") as tmp, running_server(Path(tmp) / "data") as server:
        assert server.process is not None
        tally, samples, elapsed, problems = asyncio.run(
            soak(
                server.base_url,
                server.process.pid,
                server.token,
                (server.client_id, server.client_secret),
                args,
            )
        )
        markdown, terminal = report(tally, samples, elapsed, problems, args)
    print(terminal)
    print(markdown.split("\n\n", 2)[-1])
    if args.record:
        record_section(HEADING, markdown)
    if tally.errors or problems:
        sys.exit(1)


if __name__ == "__main__":
    main()
