"""A query answer (``services.query.QueryAnswer`` in ``RowForm.ARRAYS``) as the console shows it: the
first rows as values for the grid and chart, or every row as CSV for the download.

An answer yields rows as JSON arrays in chunks of whole rows, the chunks separated by commas: any
run of chunks, bracketed, is a JSON array of rows.
"""

from __future__ import annotations

import csv
import io
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from datagrove.services.query import QueryAnswer

# What the console's grid and chart hold in the browser; the CSV download has every row.
SHOWN_ROWS = 10_000


@dataclass(frozen=True)
class ShownAnswer:
    columns: list[dict[str, str]]
    rows: list[list[Any]]
    row_count: int  # rows the query gave (all of them, or past SHOWN_ROWS when truncated)
    truncated: bool
    seconds: float

    def as_json(self) -> dict[str, Any]:
        return {
            "columns": self.columns,
            "rows": self.rows,
            "rowCount": self.row_count,
            "truncated": self.truncated,
            "seconds": round(self.seconds, 3),
        }


def _rows(chunk: bytes) -> list[list[Any]]:
    rows: list[list[Any]] = json.loads(b"[" + chunk.lstrip(b",") + b"]")
    return rows


def read_shown(answer: QueryAnswer, *, started: float, max_rows: int = SHOWN_ROWS) -> ShownAnswer:
    """Read the answer up to ``max_rows`` rows (blocking: run it in a worker thread); the query is
    stopped there rather than read on, so a large answer costs no more than its first rows."""
    rows: list[list[Any]] = []
    truncated = False
    try:
        for chunk in answer:
            rows.extend(_rows(chunk))
            if len(rows) > max_rows:
                truncated = True
                break
    finally:
        answer.close()
    columns = [{"name": name, "type": type_} for name, type_ in zip(answer.columns, answer.types, strict=True)]
    return ShownAnswer(
        columns=columns,
        rows=rows[:max_rows],
        row_count=len(rows),
        truncated=truncated,
        seconds=time.monotonic() - started,
    )


def csv_chunks(answer: QueryAnswer, first: bytes | None) -> Iterator[bytes]:
    """The answer as CSV text: a header line, then each row (NULL as an empty field, booleans as
    ``true``/``false``). ``first`` is a chunk already taken from the answer (to surface an error
    before the response starts)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")

    def taken() -> bytes:
        text = out.getvalue().encode("utf-8")
        out.seek(0)
        out.truncate()
        return text

    writer.writerow(answer.columns)
    try:
        chunks = answer if first is None else _prepend(first, answer)
        for chunk in chunks:
            writer.writerows([_csv_value(value) for value in row] for row in _rows(chunk))
            yield taken()
        yield taken()
    finally:
        answer.close()


def _prepend(first: bytes, rest: QueryAnswer) -> Iterator[bytes]:
    yield first
    yield from rest


def _csv_value(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value
