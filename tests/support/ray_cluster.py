"""A local Ray cluster for tests and benchmarks: a head and ``workers`` more nodes on this machine,
each bounded (one CPU, 1 GiB of memory, a 200 MiB object store), with Ray's files in a temporary
directory; every process is stopped afterwards, by its process group's id."""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.support.server import free_port

#: Each running cluster's temporary directory (its logs), by the head's address.
_TEMP_DIRS: dict[str, str] = {}


@contextmanager
def ray_cluster(workers: int = 1) -> Iterator[str]:
    """Start the cluster; yield the head's address (``127.0.0.1:<port>``) once every node is up."""
    # Ray puts Unix sockets under its temp dir, whose paths must stay short (107 bytes).
    temp_dir = tempfile.mkdtemp(prefix="ray", dir="/tmp")
    nodes: list[subprocess.Popen[bytes]] = []
    try:
        head = _started(
            nodes, "head", lambda: ["--head", f"--port={free_port()}", "--include-dashboard=false"], temp_dir
        )
        address = f"127.0.0.1:{head}"
        _TEMP_DIRS[address] = temp_dir
        for index in range(workers):
            _started(nodes, f"worker{index}", lambda: [f"--address={address}"], temp_dir)
        yield address
    finally:
        _stop(*nodes)
        for known in [a for a, d in _TEMP_DIRS.items() if d == temp_dir]:
            del _TEMP_DIRS[known]
        shutil.rmtree(temp_dir, ignore_errors=True)


def cluster_problems(address: str, lines: int = 60) -> str:
    """The warnings and errors the cluster at ``address`` has logged so far (its last ``lines``),
    for a failing test's message: why a query hung or failed is in Ray's logs, not the server's."""
    temp_dir = _TEMP_DIRS.get(address)
    if temp_dir is None:
        return "(no such cluster)"
    found = []
    for path in sorted(Path(temp_dir).glob("session_*/logs/*")):
        if path.suffix not in {".out", ".err", ".log"} or not path.is_file():
            continue
        for line in path.read_text(errors="replace").splitlines():
            if " E " in line[:40] or " W " in line[:40] or "Error" in line or "Traceback" in line:
                found.append(f"{path.name}: {line[:400]}")
    return "\n".join(found[-lines:]) or "(nothing)"


def _started(
    nodes: list[subprocess.Popen[bytes]], name: str, args: Callable[[], list[str]], temp_dir: str
) -> int:
    """Start a node (appended to ``nodes``) and wait until it is up; return its ``--port`` (0 for none).

    On a busy machine a node may fail its own start-up checks (Ray gives its raylet 30 s to register,
    a fixed figure): such a node is stopped and started again, up to three times in all."""
    for attempt in range(3):
        arguments = args()
        nodes.append(_node(f"{name}-{attempt}", arguments, temp_dir))
        log = Path(temp_dir) / f"{name}-{attempt}.log"
        deadline = time.monotonic() + 180
        while "Ray runtime started" not in log.read_text():
            if nodes[-1].poll() is not None or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        else:
            ports = [a.removeprefix("--port=") for a in arguments if a.startswith("--port=")]
            return int(ports[0]) if ports else 0
        _stop(nodes.pop())
        if attempt == 2:
            raise RuntimeError(f"the Ray {name} did not start:\n{log.read_text()[-3000:]}")
    raise AssertionError("unreachable")


def _node(name: str, args: list[str], temp_dir: str) -> subprocess.Popen[bytes]:
    """One node in the foreground (``--block``), in its own process group; it says "Ray runtime
    started" in ``<temp_dir>/<name>.log`` once up."""
    log = open(Path(temp_dir) / f"{name}.log", "ab")  # noqa: SIM115 - the child owns it
    return subprocess.Popen(
        [
            str(Path(sys.executable).with_name("ray")),
            "start",
            "--block",
            "--num-cpus=1",
            f"--memory={1024**3}",
            f"--object-store-memory={200 * 1024**2}",
            "--disable-usage-stats",
            f"--temp-dir={temp_dir}",
            # Fixed ports: with ports of its own choosing the raylet waits only 15 s for its agents
            # to write theirs, and exits when they start slower (a busy machine).
            f"--dashboard-agent-grpc-port={free_port()}",
            f"--dashboard-agent-listen-port={free_port()}",
            f"--metrics-export-port={free_port()}",
            f"--runtime-env-agent-port={free_port()}",
            # Ray gives its workers (and a driver, our server) ports from 10002-19999 unless told:
            # two nodes on one machine then hand out the same port, one checking it is free while
            # the other's worker binds it, and the loser aborts its whole process (a Ray check).
            # Each node here has a block of its own.
            *_worker_ports(),
            *args,
        ],
        env={**os.environ, "RAY_USAGE_STATS_ENABLED": "0"},
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


#: Worker port blocks: below the kernel's ephemeral ports (32768-), where ``free_port`` picks.
_PORT_BLOCK = 500
_PORT_BLOCKS = range(10_000, 32_000, _PORT_BLOCK)
_blocks_given: set[int] = set()


def _worker_ports() -> list[str]:
    """``--min-worker-port``/``--max-worker-port`` for one node: a block no other node started by
    this process has, drawn at random so that another test run's cluster likely has another."""
    unused = [b for b in _PORT_BLOCKS if b not in _blocks_given]
    if not unused:  # every block given out once: clusters that had them are long stopped
        _blocks_given.clear()
        unused = list(_PORT_BLOCKS)
    start = random.choice(unused)
    _blocks_given.add(start)
    return [f"--min-worker-port={start}", f"--max-worker-port={start + _PORT_BLOCK - 1}"]


def _stop(*nodes: subprocess.Popen[bytes]) -> None:
    """SIGTERM to each node's process group, then SIGKILL to whatever of them is left after 3 s: a
    ``ray start --block`` takes 15 s or more to wind down, and a test cluster keeps nothing."""
    for sig, grace in ((signal.SIGTERM, 3.0), (signal.SIGKILL, 10.0)):
        for node in nodes:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(node.pid, sig)
        deadline = time.monotonic() + grace
        for node in nodes:
            with contextlib.suppress(subprocess.TimeoutExpired):
                node.wait(timeout=max(0.0, deadline - time.monotonic()))
