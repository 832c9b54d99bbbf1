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
    row_count: int  # every row the query gave, kept or not
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
    """Read the answer, keeping its first ``max_rows`` rows (blocking: run it in a worker thread). The
    rest is read only to count it (the query's own row limit bounds that), not decoded."""
    rows: list[list[Any]] = []
    try:
        for chunk in answer:
            if len(rows) <= max_rows:
                rows.extend(_rows(chunk))
    finally:
        answer.close()
    columns = [
        {"name": name, "type": type_} for name, type_ in zip(answer.columns, answer.types, strict=True)
    ]
    return ShownAnswer(
        columns=columns,
        rows=rows[:max_rows],
        row_count=answer.rows,
        truncated=answer.rows > max_rows,
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
