"""A dataset schema guessed from the start of a CSV file: what the upload page proposes to its user.

The guess only ever proposes a type whose canonical form every sampled value is written in (the
forms ``tables/csv_canonical.py`` lists), so a file that looks like its sample ingests with the
proposed schema. A column with no value in the sample, or with values of mixed forms, is STRING.
``1``/``0`` columns are LONG, not BOOLEAN: numbers are the likelier meaning.

The first record is the header. The sample may stop inside a record (it is the first bytes of a
larger file): unless ``complete``, its last, possibly cut, record is dropped.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime

from datagrove.errors import BadRequest
from datagrove.tables.types import Column, ColumnType

MAX_SAMPLE_BYTES = 1024 * 1024
PREVIEW_ROWS = 20
_BOM = "\ufeff"

_LONG = re.compile(r"-?[0-9]{1,18}")
_DOUBLE = re.compile(r"-?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_DATETIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}([ T][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?)?")
_BOOLEAN = re.compile(r"(?i)true|false")


def _is_date(value: str) -> bool:
    return bool(_DATE.fullmatch(value)) and _valid(date.fromisoformat, value)


def _is_datetime(value: str) -> bool:
    return bool(_DATETIME.fullmatch(value)) and _valid(datetime.fromisoformat, value)


def _valid(parse: Callable[[str], object], value: str) -> bool:
    try:
        parse(value)
    except ValueError:
        return False
    return True


# In the order tried: the first that takes every non-empty value of a column wins.
_FORMS: tuple[tuple[ColumnType, Callable[[str], bool]], ...] = (
    (ColumnType.LONG, lambda value: bool(_LONG.fullmatch(value))),
    (ColumnType.DOUBLE, lambda value: bool(_DOUBLE.fullmatch(value))),
    (ColumnType.DATE, _is_date),
    (ColumnType.DATETIME, _is_datetime),
    (ColumnType.BOOLEAN, lambda value: bool(_BOOLEAN.fullmatch(value))),
)
_NULL = ("", "\\N")


@dataclass(frozen=True)
class SampleSchema:
    """The proposed ``columns``, up to ``PREVIEW_ROWS`` records of the sample as text, and where the
    data starts: ``header_bytes`` is the header record's length in bytes, its line end included."""

    columns: list[Column]
    preview: list[list[str]]
    header_bytes: int


def infer_schema(sample: bytes, *, complete: bool) -> SampleSchema:
    """Guess the schema of the CSV whose first bytes are ``sample`` (the whole file if ``complete``)."""
    if len(sample) > MAX_SAMPLE_BYTES:
        raise BadRequest(f"a schema sample is at most {MAX_SAMPLE_BYTES} bytes; send the start of the file")
    text = _decode(sample, complete=complete)
    if not text.strip():
        raise BadRequest("the file is empty: a CSV file needs a header line naming its columns")
    header_end = _record_end(text)
    header = next(csv.reader(io.StringIO(text[:header_end].removeprefix(_BOM))), [])
    if not header or all(not name.strip() for name in header):
        raise BadRequest("the first line holds no column names: a CSV file needs a header line")
    names = _names(header)
    rows = list(csv.reader(io.StringIO(text[header_end:])))
    if not complete and rows and not text.endswith("\n"):
        rows.pop()  # cut short by the end of the sample
    rows = [row for row in rows if row != []]  # csv gives [] for a blank line
    columns = [
        Column(name, _column_type([row[i] for row in rows if i < len(row)])) for i, name in enumerate(names)
    ]
    return SampleSchema(
        columns=columns,
        preview=[row for row in rows[:PREVIEW_ROWS]],
        header_bytes=len(text[:header_end].encode("utf-8")),
    )


def _decode(sample: bytes, *, complete: bool) -> str:
    try:
        return sample.decode("utf-8")
    except UnicodeDecodeError as exc:
        # A sample cut inside a character ends with part of it; anything else is not UTF-8.
        if not complete and exc.start >= len(sample) - 3 and exc.reason == "unexpected end of data":
            return sample[: exc.start].decode("utf-8")
        raise BadRequest(f"the file is not UTF-8 text (byte {exc.start} cannot be read)") from None


def _record_end(text: str) -> int:
    """Where the first record ends, after its line end (a quoted field may hold line ends)."""
    quoted = False
    for index, char in enumerate(text):
        if char == '"':
            quoted = not quoted
        elif char == "\n" and not quoted:
            return index + 1
    return len(text)


def _names(header: list[str]) -> list[str]:
    """The header's names, stripped; a blank name becomes ``column_N`` and a repeated one (SQL does
    not tell case apart) gets a ``_2``, ``_3``... suffix."""
    names: list[str] = []
    seen: set[str] = set()
    for index, raw in enumerate(header, start=1):
        base = raw.strip() or f"column_{index}"
        name, suffix = base, 2
        while name.lower() in seen:
            name, suffix = f"{base}_{suffix}", suffix + 1
        seen.add(name.lower())
        names.append(name)
    return names


def _column_type(values: list[str]) -> ColumnType:
    present = [value for value in values if value not in _NULL]
    if not present:
        return ColumnType.STRING
    for column_type, fits in _FORMS:
        if all(fits(value) for value in present):
            return column_type
    return ColumnType.STRING
