"""A small, cheap HTTP/1.1 load generator for benchmarks: many keep-alive connections on one event loop.

The server under test shares this 2-core machine with the client, so the client must cost little:
each connection sends pre-encoded request bytes and reads only the status line, the headers it
needs and the body length — no HTTP library, no per-request objects beyond a latency sample.
Loopback only (``127.0.0.1``), bounded in count and time by the caller.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Outcome:
    """What the connections saw: answers by status, latencies (seconds) of the 200s, and failures."""

    statuses: dict[int, int] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    unanswered: int = 0


def request_bytes(method: str, path: str, *, host: str, headers: dict[str, str], body: bytes = b"") -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}", f"Content-Length: {len(body)}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    chunked = False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value.strip())
        elif name == b"transfer-encoding" and b"chunked" in value.lower():
            chunked = True
    if not chunked:
        return status, await reader.readexactly(length)
    body = bytearray()
    while True:
        size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
        body += await reader.readexactly(size + 2)
        if size == 0:
            return status, bytes(body)


async def run_load(
    *,
    port: int,
    connections: int,
    seconds: float,
    make_request: Callable[[int, int], bytes],
    on_answer: Callable[[int, int, int, bytes], None] | None = None,
    grace_seconds: float = 30.0,
) -> Outcome:
    """``connections`` clients, each sending ``make_request(client, n)`` one after another (waiting for
    each answer) until ``seconds`` have passed; then waits up to ``grace_seconds`` for answers still
    out. ``on_answer(client, n, status, body)`` sees every answer."""
    outcome = Outcome()
    deadline = time.monotonic() + seconds

    async def client(index: int) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        n = 0
        try:
            while time.monotonic() < deadline:
                payload = make_request(index, n)
                started = time.perf_counter()
                writer.write(payload)
                try:
                    status, body = await asyncio.wait_for(_read_response(reader), grace_seconds)
                except TimeoutError:
                    outcome.unanswered += 1
                    return
                if status == 200:
                    outcome.latencies.append(time.perf_counter() - started)
                outcome.statuses[status] = outcome.statuses.get(status, 0) + 1
                if on_answer is not None:
                    on_answer(index, n, status, body)
                n += 1
        except (OSError, asyncio.IncompleteReadError) as exc:
            outcome.errors.append(f"client {index}: {type(exc).__name__}: {exc}")
        finally:
            writer.close()

    await asyncio.gather(*(client(i) for i in range(connections)))
    return outcome


def percentile(values: list[float], fraction: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]
