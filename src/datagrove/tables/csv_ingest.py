"""Convert one CSV file in Domo's dialect into one Parquet file with the dataset's exact schema.

The dialect, as real Domo clients (pydomo, rdomo, the Java SDK) send it:

* No header row. RFC 4180: ``,`` between fields, ``"`` quoting with ``""`` for a quote inside,
  LF or CRLF after each record (one style per file; the last one is optional), and quoted fields
  may contain newlines. A UTF-8 byte order mark is skipped.
* An empty unquoted field and an unquoted ``\\N`` are NULL. A quoted ``""`` is the empty string in a
  STRING column and NULL in every other column.
* LONG: ``-?[0-9]+``, and ``-?[0-9]+\\.0+`` (``1.0``) because pandas writes nullable ints that way.
  ``1.5`` is rejected rather than rounded.
* DOUBLE: Python and Java float syntax (``1e+20``, ``1.0E20``, ``inf``, ``Infinity``, ``nan``);
  like Python's ``float()``, surrounding spaces and ``_`` between digits are allowed.
* DECIMAL: the same syntax without inf/nan, rounded half-up to 10 decimal places; more than 28
  integer digits is an error.
* DATE: ``YYYY-MM-DD``, optionally followed by a midnight time (``2024-01-01 00:00:00``,
  ``…T00:00:00.000Z``, ``…+00:00``), which pandas writes for datetime columns holding dates. Any
  other time is rejected rather than truncated, because that would silently drop data.
* DATETIME: a date alone (midnight), or a date, ``T`` or space, and a time with any number of
  fraction digits (truncated to microseconds), then optionally ``Z``, ``±HH[:MM]`` or a zone name.
  Values with an offset or zone are converted to UTC; values without one are taken as UTC.
* BOOLEAN: ``true``/``false`` and ``1``/``0`` in any case; DuckDB's ``t/f``, ``yes/no`` and
  ``y/n`` are accepted too since they cannot be misread.
* STRING: any UTF-8 text, kept exactly (leading and trailing spaces included).

Every problem raises ``InvalidCsv`` naming the 1-based physical line (newlines inside quoted fields
count), the column and the value. Conversion streams through DuckDB in bounded memory; only when
it fails does a second pass look for the first problem in file order, so messages are deterministic
and never carry DuckDB's text (which holds file paths and hints). A record may be at most
``MAX_RECORD_BYTES`` long.

The DuckDB conversion here is the dialect's definition. A file written only in its canonical forms
(most are) is first offered to ``csv_canonical``, which converts it about twice as fast with Arrow
and is tested to write exactly what this module would; whatever it declines comes here.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from datagrove.errors import BadRequest, DatagroveError, InvalidCsv
from datagrove.tables.csv_canonical import MAX_RECORD_BYTES, convert_canonical
from datagrove.tables.field_ids import duckdb_copy_option
from datagrove.tables.parquet_layout import ParquetLayout
from datagrove.tables.types import Column, ColumnType, validate_schema

_LONG_PATTERN = r"-?[0-9]+(\.0+)?"
_DATE_PATTERN = r"[0-9]{4}-[0-9]{2}-[0-9]{2}([ T]00:00(:00(\.0+)?)?(Z|[+-]00(:?00)?)?)?"
# Keeps out the words DuckDB's timestamp cast also accepts ('infinity', 'epoch') and padded values.
_DATETIME_PREFIX = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}([ T]|$)"

_SPECIAL_BYTES = re.compile(rb'["\r\n]')
_QUOTE_OR_CR = re.compile(rb'["\r]')
_QUOTE_OR_CRLF = re.compile(rb'"|\r\n')
_CHUNK_BYTES = 8 * 1024 * 1024
_MAX_SHOWN_CHARS = 200


@dataclass(frozen=True)
class IngestedFile:
    path: Path  # the Parquet file written
    rows: int
    bytes: int  # size of the Parquet file
    canonical: bool  # converted by csv_canonical's fast path (else by the strict DuckDB conversion)


def csv_to_parquet(
    source: Path,
    target: Path,
    columns: Sequence[Column],
    *,
    threads: int = 2,
    label: str | None = None,
    fast_path: bool = True,
    parquet: ParquetLayout = ParquetLayout(),
    field_ids: Sequence[int] | None = None,
) -> IngestedFile:
    """Write ``source`` (uncompressed UTF-8 CSV, Domo dialect) to ``target`` as Parquet laid out as ``parquet``.

    The Parquet columns are named exactly as ``columns``, typed exactly as ``ColumnType.arrow`` and
    carry the Iceberg ``field_ids`` (``tables/field_ids.py``; None: 1..n); rows keep file order. ``target`` appears atomically (written under a temporary name in its
    directory, fsynced, then renamed) and not at all when anything fails. ``threads`` bounds
    the worker threads. ``label`` (e.g. ``"part 3"``) prefixes error messages. ``fast_path=False``
    skips ``csv_canonical`` (the tests compare the two conversions).

    Raises ``InvalidCsv`` for any problem in the file, ``BadRequest`` for a schema DuckDB cannot
    write, and ``DatagroveError`` (500) if DuckDB fails for a reason other than the data.
    """
    if threads < 1:
        raise ValueError("threads must be at least 1")
    if any(char in str(source) for char in "*?["):
        raise ValueError("source path must not contain glob characters")  # DuckDB would expand them
    columns = list(columns)
    validate_schema(columns)
    _check_names_distinct_ignoring_case(columns)

    tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
    try:
        rows = (
            convert_canonical(source, tmp, columns, threads=threads, parquet=parquet, field_ids=field_ids)
            if fast_path
            else None
        )
        canonical = rows is not None
        if rows is None:
            tmp.unlink(missing_ok=True)
            with contextlib.ExitStack() as cleanup:
                if not columns:
                    rows = _write_without_columns(source, tmp, label, parquet)
                else:
                    csv_path, crlf = _prepare_line_endings(source, target.parent, cleanup, label)
                    rows = _convert(
                        csv_path,
                        tmp,
                        columns,
                        crlf=crlf,
                        threads=threads,
                        label=label,
                        parquet=parquet,
                        field_ids=field_ids,
                    )
        with tmp.open("rb") as written:
            os.fsync(written.fileno())
        size = tmp.stat().st_size
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return IngestedFile(path=target, rows=rows, bytes=size, canonical=canonical)


def _check_names_distinct_ignoring_case(columns: list[Column]) -> None:
    # DuckDB identifiers are case-insensitive: it would write "A" as "A_1" next to "a".
    seen: dict[str, str] = {}
    for column in columns:
        other = seen.setdefault(column.name.lower(), column.name)
        if other != column.name:
            raise BadRequest(f"column names {other!r} and {column.name!r} differ only in case")


def _write_without_columns(source: Path, tmp: Path, label: str | None, parquet: ParquetLayout) -> int:
    # read_csv needs at least one column; an empty schema can only take an empty file.
    if source.stat().st_size > 0:
        raise _invalid(label, 1, "the dataset has no columns, so the file must be empty")
    pq.write_table(pa.table({}), tmp, compression=parquet.arrow_compression)
    return 0


def _prepare_line_endings(
    source: Path, scratch_dir: Path, cleanup: contextlib.ExitStack, label: str | None
) -> tuple[Path, bool]:
    """Return the file DuckDB should read and whether its records end with CRLF.

    DuckDB guesses the line ending from the first CR or LF byte in the file, even inside quotes,
    and its explicit CRLF setting does not work. An LF file is read with an explicit LF setting;
    a CRLF file whose first CR/LF byte is not a CRLF (a multi-line first record written with lone
    LFs) is copied with the CRLFs that end records turned into LF; CRLFs inside quoted fields stay.
    """
    ending, line, first_is_ending = _first_record_ending(source)
    if ending == b"\r":
        raise _invalid(label, line, "lines must end with LF or CRLF, not CR alone")
    if ending == b"\n" or first_is_ending:
        return source, ending == b"\r\n"
    copy = scratch_dir / f".{source.name}.{uuid.uuid4().hex}.lf.csv"
    cleanup.callback(copy.unlink, missing_ok=True)
    with copy.open("wb") as out:
        _copy_with_lf_record_endings(source, out)
    return copy, False


def _copy_with_lf_record_endings(source: Path, out: BinaryIO) -> None:
    """Copy ``source`` to ``out`` with every CRLF outside quotes written as LF.

    Quote parity decides what is inside a field: an escaped ``""`` flips it twice. This walks
    every quote in Python, which is slow, but only this rare kind of file comes here.
    """
    in_quotes = False
    for chunk in _chunks(source):  # a chunk never ends between CR and LF
        pieces: list[bytes] = []
        copied = 0
        for match in _QUOTE_OR_CRLF.finditer(chunk):
            if match.group() == b'"':
                in_quotes = not in_quotes
            elif not in_quotes:
                pieces += (chunk[copied : match.start()], b"\n")
                copied = match.end()
        pieces.append(chunk[copied:])
        out.write(b"".join(pieces))


def _first_record_ending(path: Path) -> tuple[bytes, int, bool]:
    """(ending of the first record, its line, whether the file's first CR/LF byte starts it)."""
    with path.open("rb") as file:
        head = file.read(MAX_RECORD_BYTES + 2)
    in_quotes = False
    first_newline = None
    for match in _SPECIAL_BYTES.finditer(head):
        at = match.start()
        if head[at] == ord('"'):
            in_quotes = not in_quotes
            continue
        if first_newline is None:
            first_newline = at
        if not in_quotes:
            ending = b"\r\n" if head.startswith(b"\r\n", at) else head[at : at + 1]
            return ending, head.count(b"\n", 0, at) + 1, head.startswith(ending, first_newline)
    return b"\n", 1, True  # a single record without a line ending


def _convert(
    path: Path,
    tmp: Path,
    columns: list[Column],
    *,
    crlf: bool,
    threads: int,
    label: str | None,
    parquet: ParquetLayout,
    field_ids: Sequence[int] | None,
) -> int:
    select = ", ".join(
        f"{_typed_sql(f'c{i}', column.type, strict=True)} AS {_identifier(column.name)}"
        for i, column in enumerate(columns)
    )
    sql = (
        f"COPY (SELECT {select} FROM {_read_csv_sql(path, len(columns), crlf=crlf)}) "
        f"TO {_literal(str(tmp))} ({parquet.duckdb_copy_options()}{duckdb_copy_option(columns, field_ids)})"
    )
    try:
        with _connect(threads) as con:
            result = con.execute(sql).fetchone()
    except duckdb.Error as exc:
        problem = _diagnose(path, columns, crlf=crlf, threads=threads, label=label)
        if problem is None:
            raise DatagroveError("could not convert the CSV file to Parquet") from exc
        raise problem from exc
    assert result is not None
    return int(result[0])


def _connect(threads: int) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(
        ":memory:",
        config={
            "threads": threads,
            "preserve_insertion_order": True,  # rows keep file order
            "autoinstall_known_extensions": False,
            "autoload_known_extensions": False,
        },
    )
    con.execute("SET TimeZone = 'UTC'")  # DATETIME values without an offset are UTC
    # Otherwise a table name that matches a Python variable in the calling frame reads the variable.
    con.execute("SET python_enable_replacements = false")
    return con


def _read_csv_sql(path: Path, width: int, *, crlf: bool, extra: str = "") -> str:
    """read_csv over ``path`` giving VARCHAR columns c0..c{width-1}, NULLs already applied.

    Everything is read as VARCHAR because a quoted "" must become NULL in typed columns, which
    DuckDB's typed reader rejects, and because its LONG and DATE parsing round and truncate.
    """
    names = ", ".join(f"'c{i}': 'VARCHAR'" for i in range(width))
    new_line = "" if crlf else r", new_line = '\n'"
    return (
        f"read_csv({_literal(str(path))}, columns = {{{names}}}, header = false, auto_detect = false, "
        f"""delim = ',', quote = '"', escape = '"', strict_mode = true, """
        rf"nullstr = ['', '\N'], allow_quoted_nulls = false, max_line_size = {MAX_RECORD_BYTES}"
        f"{new_line}{extra})"
    )


def _typed_sql(ref: str, column_type: ColumnType, *, strict: bool) -> str:
    """SQL turning raw field ``ref`` into ``column_type``: invalid values raise, or with
    ``strict=False`` become NULL (what the diagnosis uses to find them)."""
    if column_type is ColumnType.STRING:
        return ref
    cast = "CAST" if strict else "TRY_CAST"
    invalid = "error('invalid value')" if strict else "NULL"
    value = f"NULLIF({ref}, '')"

    def checked(condition: str, expression: str) -> str:
        return f"CASE WHEN {value} IS NULL THEN NULL WHEN {condition} THEN {expression} ELSE {invalid} END"

    if column_type is ColumnType.LONG:
        return checked(f"regexp_full_match({value}, '{_LONG_PATTERN}')", f"{cast}({value} AS BIGINT)")
    if column_type is ColumnType.DATE:
        return checked(f"regexp_full_match({value}, '{_DATE_PATTERN}')", f"{cast}(left({value}, 10) AS DATE)")
    if column_type is ColumnType.DATETIME:
        # A plain TIMESTAMP cast ignores the offset; TIMESTAMPTZ applies it, in the UTC session.
        return checked(
            f"regexp_matches({value}, '{_DATETIME_PREFIX}')",
            f"{cast}({cast}({value} AS TIMESTAMPTZ) AS TIMESTAMP)",
        )
    return f"{cast}({value} AS {column_type.duckdb})"


def _diagnose(
    path: Path, columns: list[Column], *, crlf: bool, threads: int, label: str | None
) -> InvalidCsv | None:
    """The first problem in the file, or None if the data is not what made DuckDB fail.

    One full pass reads every field as text, records malformed records in DuckDB's rejects table
    instead of stopping, and finds the first value that does not convert. The rejects table only
    appears once the result is exhausted, so the pass must not stop early (no bare LIMIT).
    """
    width = len(columns)
    oks = [
        f"({_typed_sql(f'c{i}', column.type, strict=False)} IS NOT NULL OR NULLIF(c{i}, '') IS NULL)"
        for i, column in enumerate(columns)
    ]
    fields = ", ".join(f"c{i}" for i in range(width))
    read = _read_csv_sql(
        path, width, crlf=crlf, extra=", store_rejects = true, rejects_table = 'csv_rejects'"
    )
    try:
        with _connect(threads) as con:
            found = con.execute(
                f"SELECT rn, [{', '.join(oks)}], [{fields}] "
                f"FROM (SELECT row_number() OVER () AS rn, * FROM {read}) "
                f"WHERE NOT ({' AND '.join(oks)}) ORDER BY rn LIMIT 1"
            ).fetchall()
            # "line" is DuckDB's record number, in which (unlike in rn) blank lines count.
            malformed = con.execute(
                "SELECT line, error_type, error_message FROM csv_rejects "
                "WHERE line = (SELECT min(line) FROM csv_rejects) ORDER BY byte_position"
            ).fetchall()
    except duckdb.InvalidInputException:
        # Raised even with rejects on: a line ending of the other style, or a stray CR.
        stray = _stray_line_ending(path, crlf=crlf)
        if stray is None:
            return _invalid(label, None, "the file is not valid CSV")
        return _invalid(label, *stray)
    except duckdb.Error:
        return None

    # (line_byte_position would be simpler, but DuckDB gets it wrong after blank lines.)
    malformed_line = _record_start_line(path, malformed[0][0], skip_blank_lines=False) if malformed else None
    if found:
        record, oks_found, values = found[0]
        # Each rejected record makes the rows after it numbered one short, so this line can come
        # out early, but never before the first rejected record's: the comparison stays right.
        line = _record_start_line(path, record, skip_blank_lines=width > 1)
        if malformed_line is None or line < malformed_line:
            index = oks_found.index(False)
            column, value = columns[index], values[index]
            text = f"{_quoted(value)} is not a {column.type.value}"
            return _invalid(label, line, text, column=column.name, value=value)
    if malformed_line is not None:
        text = _describe_malformed(malformed[0][1], [row[2] for row in malformed], width)
        return _invalid(label, malformed_line, text)
    return None


def _describe_malformed(error_type: str, messages: list[str], width: int) -> str:
    if error_type in ("MISSING COLUMNS", "TOO MANY COLUMNS"):
        # DuckDB records one row per extra field; the largest count is the real one.
        counts = [int(m.group(1)) for message in messages if (m := re.search(r"Found: (\d+)", message))]
        found = max(counts, default=None)
        return f"expected {width} fields, found {found}" if found is not None else f"expected {width} fields"
    if error_type == "UNQUOTED VALUE":
        return 'a quoted field is not closed, or has text after its closing quote (" inside quotes is "")'
    if error_type == "INVALID ENCODING":
        return "not valid UTF-8"
    if error_type == "LINE SIZE OVER MAXIMUM":
        return f"the record is longer than {MAX_RECORD_BYTES} bytes"
    return "not valid CSV"


def _record_start_line(path: Path, record: int, *, skip_blank_lines: bool) -> int:
    """1-based line on which DuckDB's ``record``-th record (1-based) starts.

    DuckDB numbers records, not lines, and its row numbers (but not its error records) skip blank
    lines when there is more than one column, so the file is walked line by line: an odd number of
    quotes on a line flips whether the next line continues a quoted field.
    """
    in_quotes, records, start = False, 0, 1
    for number, (text, _) in enumerate(_lines(path), start=1):
        if not in_quotes:
            start = number
        if text.count(b'"') % 2:
            in_quotes = not in_quotes
        if in_quotes or (skip_blank_lines and start == number and text in (b"", b"\r")):
            continue
        records += 1
        if records == record:
            return start
    return start


def _stray_line_ending(path: Path, *, crlf: bool) -> tuple[int, str] | None:
    """The first line ending outside quotes that breaks the file's style, with its line."""
    expected, other = ("CRLF", "LF") if crlf else ("LF", "CRLF")
    in_quotes = False
    for number, (text, terminated) in enumerate(_lines(path), start=1):
        ends_with_cr = text.endswith(b"\r")
        body = text[:-1] if ends_with_cr else text
        if b"\r" in body and _cr_outside_quotes(body, in_quotes):
            return number, "has a carriage return outside quotes"
        if text.count(b'"') % 2:
            in_quotes = not in_quotes
        if in_quotes:
            continue
        if ends_with_cr and not terminated:
            return number, "has a carriage return outside quotes"
        if terminated and ends_with_cr != crlf:
            return number, f"ends with {other}, but the file's first line ends with {expected}"
    return None


def _cr_outside_quotes(text: bytes, in_quotes: bool) -> bool:
    for match in _QUOTE_OR_CR.finditer(text):
        if match.group() == b'"':
            in_quotes = not in_quotes
        elif not in_quotes:
            return True
    return False


def _lines(path: Path) -> Iterator[tuple[bytes, bool]]:
    """Each line without its LF, and whether an LF ended it (only the last one may lack it)."""
    rest = b""
    for chunk in _chunks(path):
        *complete, rest = (rest + chunk).split(b"\n")
        for text in complete:
            yield text, True
    yield rest, False


def _chunks(path: Path) -> Iterator[bytes]:
    """The file in large pieces, none ending with a CR unless the file does (keeps CRLF whole)."""
    with path.open("rb") as file:
        while chunk := file.read(_CHUNK_BYTES):
            while chunk.endswith(b"\r") and (more := file.read(1)):
                chunk += more
            yield chunk


def _invalid(
    label: str | None, line: int | None, text: str, *, column: str | None = None, value: str | None = None
) -> InvalidCsv:
    where = [] if label is None else [label]
    if line is not None:
        where.append(f"line {line}")
    if column is not None:
        where.append(f"column {_quoted(column)}")
    message = f"{', '.join(where)}: {text}" if where else text
    shown = None if value is None else _shorten(value)
    return InvalidCsv(message, line=line, column=column, value=shown)


def _quoted(text: str) -> str:
    return json.dumps(_shorten(text), ensure_ascii=False)


def _shorten(text: str) -> str:
    return text if len(text) <= _MAX_SHOWN_CHARS else text[:_MAX_SHOWN_CHARS] + "…"


def _identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"
