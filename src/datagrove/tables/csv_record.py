"""One CSV record of Domo's dialect, as the one-row append takes it (``{"values", "delimiter"}``).

``values`` is one record of the dialect that ``csv_ingest`` defines, with ``delimiter`` between its
fields instead of ``,``. ``split_record`` reads its fields (``split_strictly`` the few records it
leaves to the strict reader), ``encode_record`` writes them back as a canonical comma-separated line
(what the append buffer stores and a fold converts), and ``certainly_valid`` says whether the
strict conversion will accept that line without running it.

``certainly_valid`` is a fast path in the sense of ``csv_canonical``: it only ever says "yes, for
sure" or "ask the strict conversion"; it never judges a value bad. It accepts the canonical forms
(``csv_canonical`` lists them) with the limits a cast would enforce checked here: a LONG within 64
bits, a DECIMAL with at most 28 integer digits, a DATE or DATETIME that is a real calendar time.
``tests/unit/test_csv_record.py`` holds both functions to the strict conversion: a record it
splits is the record DuckDB reads, and a line it calls valid converts.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date, datetime
from pathlib import Path

import pyarrow.parquet as pq

from datagrove.errors import BadRequest, InvalidCsv
from datagrove.tables.csv_ingest import csv_to_parquet
from datagrove.tables.types import Column, ColumnType

#: A field: its text, or None for NULL (an empty unquoted field or an unquoted ``\N``). A quoted
#: empty field is the text ``""``: the empty string in a STRING column and NULL in the others.
Field = str | None

NULL_TEXT = "\\N"
_BOM = "\ufeff"
_NEEDS_QUOTES = re.compile(r'[,"\r\n]')

_LONG = re.compile(r"-?[0-9]+(?:\.0+)?")
_DOUBLE = re.compile(r"-?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?")
_DECIMAL = re.compile(r"-?0*([0-9]{1,28})(?:\.[0-9]{1,10})?")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_DATETIME = re.compile(
    r"([0-9]{4}-[0-9]{2}-[0-9]{2})(?:[ T]([0-9]{2}:[0-9]{2}:[0-9]{2})(?:\.([0-9]{1,6}))?)?"
)
_BOOLEAN_WORDS = frozenset({"true", "false", "t", "f", "yes", "no", "y", "n", "1", "0"})
_LONG_MIN, _LONG_MAX = -(2**63), 2**63 - 1


def check_delimiter(delimiter: object) -> str:
    """The delimiter to split with: ``,`` when absent or empty; one character, not a quote or line end."""
    if delimiter is None or delimiter == "":
        return ","
    if not isinstance(delimiter, str) or len(delimiter) != 1 or delimiter in '"\r\n':
        raise BadRequest(f"delimiter must be one character (not a quote or a line break), not {delimiter!r}")
    return delimiter


def split_record(values: str, delimiter: str) -> list[Field] | None:
    """The fields of ``values``, one record: RFC 4180 quoting (``""`` inside quotes), ``delimiter``
    between fields, one optional trailing line end, a leading byte order mark skipped (as at the
    start of a body). Raises ``BadRequest`` for anything that is not exactly one record.

    With ``,`` the record is the dialect's, whose reader also takes a ``"`` inside an unquoted
    field as a character and spaces around a quoted field: for those this answers None ("read it
    with ``split_strictly``"). With another delimiter they are errors.
    """
    lenient = delimiter == ","
    text = values[1:] if values.startswith(_BOM) else values
    if text.endswith("\r\n"):
        text = text[:-2]
    elif text.endswith("\n"):
        text = text[:-1]
    fields: list[Field] = []
    position, length = 0, len(text)
    while True:
        if position < length and text[position] == '"':
            content: list[str] = []
            position += 1
            while True:
                closing = text.find('"', position)
                if closing < 0:
                    raise BadRequest("values is not one CSV record: a quoted field is not closed")
                content.append(text[position:closing])
                if text.startswith('""', closing):
                    content.append('"')
                    position = closing + 2
                    continue
                position = closing + 1
                break
            fields.append("".join(content))
            if position < length and text[position] != delimiter:
                if lenient and text[position] == " ":
                    return None
                raise BadRequest(
                    "values is not one CSV record: a quoted field has text after its closing quote"
                )
        else:
            end = text.find(delimiter, position)
            end = length if end < 0 else end
            raw = text[position:end]
            if "\n" in raw or "\r" in raw:
                raise BadRequest("values must hold exactly one row; it has a line break outside quotes")
            if '"' in raw:
                if lenient:
                    return None
                raise BadRequest('values is not one CSV record: a " inside an unquoted field')
            fields.append(None if raw in ("", NULL_TEXT) else raw)
            position = end
        if position >= length:
            return fields
        position += 1  # past the delimiter; a delimiter at the very end leaves one empty field
        if position == length:
            fields.append(None)
            return fields


def split_strictly(values: str, width: int, scratch: Path) -> list[Field]:
    """The fields of ``values`` (comma-separated) as the strict conversion reads them, when
    ``split_record`` declined; ``width`` is the number of fields the record must have. Raises
    ``InvalidCsv`` (wrong number of fields, broken quoting) or ``BadRequest`` (not one record)."""
    text = values[1:] if values.startswith(_BOM) else values
    source = scratch / "record.csv"
    source.write_text(text if text.endswith("\n") else text + "\n", encoding="utf-8", errors="surrogatepass")
    target = scratch / "record.parquet"
    columns = [Column(f"field {index + 1}", ColumnType.STRING) for index in range(width)]
    rows = csv_to_parquet(source, target, columns, threads=1).rows
    if rows != 1:
        raise BadRequest(f"values must hold exactly one row, not {rows}")
    table = pq.read_table(target)
    return [table.column(index)[0].as_py() for index in range(width)]


def strictly_checked_line(
    values: str, fields: Sequence[Field] | None, columns: Sequence[Column], scratch: Path
) -> str:
    """The canonical line of ``values`` after the strict conversion has read it under ``columns``
    (``fields`` as ``split_record`` gave them; None: read them with ``split_strictly`` too). Raises
    ``InvalidCsv`` naming the problem as a client sees it: a row of values, not line 1 of a file."""
    try:
        if fields is None:
            fields = split_strictly(values, len(columns), scratch)
        if len(fields) != len(columns):
            names = ", ".join(c.name for c in columns)
            raise InvalidCsv(
                f"expected {len(columns)} values ({names}), found {len(fields)}",
                expected=len(columns),
                found=len(fields),
            )
        line = encode_record(fields)
        source = scratch / "row.csv"
        source.write_text(line, encoding="utf-8", errors="surrogatepass")
        csv_to_parquet(source, scratch / "row.parquet", columns, threads=1)
    except InvalidCsv as exc:
        message = exc.message.removeprefix("line 1, ").removeprefix("line 1: ")
        details = {key: value for key, value in exc.details.items() if key != "line"}
        raise InvalidCsv(message, **details) from None
    return line


def encode_record(fields: Sequence[Field]) -> str:
    """``fields`` as one canonical comma-separated line ending in LF: NULL as an empty field (``\\N``
    when it is the only field, since an empty line is no record), text quoted only when it must be."""
    if len(fields) == 1 and fields[0] is None:
        return NULL_TEXT + "\n"
    return ",".join(_encode_field(field) for field in fields) + "\n"


def _encode_field(field: Field) -> str:
    if field is None:
        return ""
    if field == "" or field == NULL_TEXT or field.startswith(_BOM) or _NEEDS_QUOTES.search(field):
        return '"' + field.replace('"', '""') + '"'
    return field


def certainly_valid(fields: Sequence[Field], columns: Sequence[Column]) -> bool:
    """True when the strict conversion accepts ``encode_record(fields)`` under ``columns``; False
    means "not sure": run the strict conversion, which accepts the line or names the problem."""
    if len(fields) != len(columns):
        return False
    return all(
        field is None or _certainly_valid_value(field, column.type)
        for field, column in zip(fields, columns, strict=True)
    )


def _certainly_valid_value(text: str, column_type: ColumnType) -> bool:
    if "\x00" in text:
        return False
    if column_type is ColumnType.STRING:
        return _is_utf8(text)
    if text == "":
        return True  # a quoted empty field: NULL in every column but STRING
    if column_type is ColumnType.LONG:
        return _LONG.fullmatch(text) is not None and _LONG_MIN <= int(text.split(".")[0]) <= _LONG_MAX
    if column_type is ColumnType.DOUBLE:
        return _DOUBLE.fullmatch(text) is not None and abs(float(text)) < 1e300
    if column_type is ColumnType.DECIMAL:
        return _DECIMAL.fullmatch(text) is not None
    if column_type is ColumnType.DATE:
        return _DATE.fullmatch(text) is not None and _is_date(text)
    if column_type is ColumnType.DATETIME:
        match = _DATETIME.fullmatch(text)
        return match is not None and _is_datetime(*match.groups())
    if column_type is ColumnType.BOOLEAN:
        return text.lower() in _BOOLEAN_WORDS
    return False


def _is_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate, which JSON can carry and UTF-8 cannot
        return False
    return True


def _is_date(text: str) -> bool:
    try:
        date.fromisoformat(text)
    except ValueError:
        return False
    return True


def _is_datetime(day: str, time: str | None, fraction: str | None) -> bool:
    try:
        datetime.fromisoformat(f"{day}T{time or '00:00:00'}.{(fraction or '0').ljust(6, '0')}")
    except ValueError:
        return False
    return True
