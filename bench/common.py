"""What every benchmark in bench/ shares: timing, the machine description, a server, RESULTS.md.

A benchmark is a script (``./dg bench NAME`` runs ``bench/NAME.py``) over generated data whose
checksum it verifies, and it reports ratios to a baseline measured in the same run, because absolute
figures on a shared machine move by ±20 % from one pass to the next.
"""

from __future__ import annotations

import os
import platform
import re
import statistics
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = ROOT / "bench" / "data"  # gitignored: generated inputs, cached between runs
RESULTS = ROOT / "bench" / "RESULTS.md"
RESULTS_TITLE = "# Benchmark results"

# ``python bench/x.py`` puts bench/ on sys.path, not the repository root that holds ``tests``.
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.support.server import RunningServer  # noqa: E402


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    """(milliseconds, result) of one call."""
    started = time.perf_counter()
    result = fn()
    return (time.perf_counter() - started) * 1000, result


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def machine() -> str:
    """One line: CPU count and model, memory, OS, Python."""
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = ""
    try:
        kib = int(re.findall(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text())[0])
        memory = f", {kib / 1024**2:.1f} GiB RAM"
    except (OSError, IndexError):
        pass
    return (
        f"nproc {os.cpu_count()} ({model}){memory}, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}"
    )


def today() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A GitHub table; columns after the first are right-aligned (they hold figures)."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join(["---"] + ["---:"] * (len(headers) - 1)) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def text_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """The same table for a terminal: aligned columns, no markup."""
    cells = [list(map(str, headers))] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    out = []
    for n, row in enumerate(cells):
        out.append(
            "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths)))
        )
        if n == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


def record_section(heading: str, body: str, path: Path = RESULTS) -> None:
    """Put ``## heading`` + ``body`` into RESULTS.md, replacing that section if it is there.

    Other sections (other benchmarks) are kept as they are and in their order; a new one goes last.
    """
    text = path.read_text() if path.exists() else RESULTS_TITLE + "\n"
    section = f"## {heading}\n\n{body.strip()}\n"
    pattern = re.compile(rf"^## {re.escape(heading)}\n.*?(?=^## |\Z)", re.DOTALL | re.MULTILINE)
    if pattern.search(text):
        text = pattern.sub(lambda _: section + "\n", text, count=1).rstrip() + "\n"
    else:
        text = text.rstrip() + "\n\n" + section
    path.write_text(text)


@contextmanager
def running_server(data_dir: Path, **env: str) -> Iterator[RunningServer]:
    """A real ``datagrove serve`` on a free port over ``data_dir`` (SQLite catalog), stopped afterwards."""
    server = RunningServer(data_dir=data_dir, catalog_url=None, extra_env=dict(env)).start()
    try:
        yield server
    finally:
        server.stop()
