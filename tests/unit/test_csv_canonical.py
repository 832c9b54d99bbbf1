"""The fast CSV conversion (csv_canonical) against the strict one (csv_ingest's DuckDB conversion).

The property that makes the fast path safe: whatever the input, when the fast path writes a file,
the strict conversion accepts the same input and writes exactly the same rows; when the strict one
rejects the input, the fast path declines. Hypothesis builds inputs from fields that are canonical,
valid but not canonical, and broken, quoted in every way clients (and careless hands) quote.
The other tests pin that the common inputs do take the fast path, which the property alone would
not notice if it declined everything.
"""

from __future__ import annotations

import datetime as dt
import os
import struct
import threading
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from datagrove.errors import InvalidCsv
from datagrove.tables.csv_canonical import MAX_RECORD_BYTES, convert_canonical
from datagrove.tables.csv_ingest import csv_to_parquet
from datagrove.tables.csv_layout import Layout, scan_layout
from datagrove.tables.parquet_layout import ROW_GROUP_ROWS
from datagrove.tables.types import Column, ColumnType

S, L, D, DEC = ColumnType.STRING, ColumnType.LONG, ColumnType.DOUBLE, ColumnType.DECIMAL
DATE, DT, B = ColumnType.DATE, ColumnType.DATETIME, ColumnType.BOOLEAN

EXAMPLES = int(os.environ.get("DATAGROVE_FUZZ_EXAMPLES", "300"))


# --- the two conversions ---------------------------------------------------------------------------


def strict(folder: Path, source: Path, columns: list[Column]) -> pa.Table | InvalidCsv:
    try:
        result = csv_to_parquet(source, folder / "strict.parquet", columns, threads=1, fast_path=False)
    except InvalidCsv as exc:
        return exc
    return pq.read_table(result.path)


def fast(folder: Path, source: Path, columns: list[Column], threads: int = 1) -> pa.Table | None:
    target = folder / "fast.parquet"
    target.unlink(missing_ok=True)
    rows = convert_canonical(source, target, columns, threads=threads)
    if rows is None:
        return None
    table = pq.read_table(target)
    assert table.num_rows == rows
    return table


def comparable(array: pa.ChunkedArray) -> list[object]:
    """The column's values as plain numbers where Python's own types would fail or blur: dates
    and timestamps as Arrow's integers (year 0 has no ``datetime.date``), doubles as their bits."""
    if pa.types.is_date32(array.type):
        return array.cast(pa.int32()).to_pylist()
    if pa.types.is_timestamp(array.type):
        return array.cast(pa.int64()).to_pylist()
    if pa.types.is_float64(array.type):
        return [None if v is None else struct.pack("<d", v) for v in array.to_pylist()]
    return array.to_pylist()


def assert_same_tables(fast_table: pa.Table, strict_table: pa.Table) -> None:
    assert fast_table.schema.remove_metadata() == strict_table.schema.remove_metadata()
    for name in strict_table.column_names:
        assert comparable(fast_table.column(name)) == comparable(strict_table.column(name)), name


def check(folder: Path, data: bytes, columns: list[Column]) -> pa.Table | None:
    """Run both conversions on ``data``; assert the property; return the fast path's table."""
    source = folder / "in.csv"
    source.write_bytes(data)
    fast_table = fast(folder, source, columns)
    strict_result = strict(folder, source, columns)
    if fast_table is not None:
        assert not isinstance(strict_result, InvalidCsv), (
            f"fast path accepted what strict rejects: {strict_result}"
        )
        assert_same_tables(fast_table, strict_result)
    return fast_table


# --- the property ---------------------------------------------------------------------------------

NUMBER_CHARS = "0123456789-+.eE_x "
SPECIAL_DOUBLES = [
    "inf", "-inf", "+inf", "Infinity", "-Infinity", "INF", "iNf", "infinit", "nan", "NaN", "-nan",
    "+nan", "nan(1)", "1e400", "-1e400", "1e-400", "4.9e-324", ".5", "5.", "-.5", "1e", "1e+", "0x1p3",
    "1.0f", "1.0d", "1_000", " 1", "1 ", "\t1", "1\t", "\v1", "\f1", "\u00a01", "  -1.5  ", "--1", "+-1",
    "1..2", "١", "0.1", "1E+5", "00.5",
]  # fmt: skip
SPECIAL_LONGS = [
    "0", "-0", "007", "-007", "1.0", "1.00", "-1.0", "1.5", "1.", ".0", "+1", " 1", "1 ", "0x10",
    "0X1F", "1e3", "1_0", "١٢", "9223372036854775807", "9223372036854775808", "-9223372036854775808",
    "-9223372036854775809", "00000000000000000000000001", "9223372036854775807.0", "-", "--1",
]  # fmt: skip
SPECIAL_DATES = [
    "2024-02-29", "2023-02-29", "2024-02-30", "0000-01-01", "0001-01-01", "9999-12-31", "10000-01-01",
    "2024-1-01", "2024-01-1", " 2024-01-01", "2024-01-01 ", "+2024-01-01", "2024/01/01", "20240101",
    "2024-01-01T00:00:00", "2024-01-01 00:00:00", "2024-01-01T00:00:00.000Z", "2024-01-01 10:00:00",
    "2024-13-01", "2024-00-10", "2024-01-00", "-001-01-01", "2024-01-0a", "２０２４-01-01",
]  # fmt: skip
SPECIAL_DATETIMES = [
    "2024-01-01", "2024-01-01 10:00:00", "2024-01-01T10:00:00", "2024-01-01 10:00", "2024-01-01T10",
    "2024-01-01 23:59:60", "2024-01-01 24:00:00", "2024-01-01 10:00:00.", "2024-01-01 10:00:00.1",
    "2024-01-01 10:00:00.123456", "2024-01-01 10:00:00.1234567", "2024-01-01 10:00:00.123456789",
    "2024-01-01 10:00:00Z", "2024-01-01T10:00:00+01:00", "2024-01-01 10:00:00-0530", "0000-01-01",
    "2024-02-30 00:00:00", "2024-01-01 1:00:00", "2024-01-01 10:60:00", "2024-01-01 10:00:61",
    "2024-01-01  10:00:00", "2024-01-01t10:00:00", "epoch", "infinity", " 2024-01-01 10:00:00",
]  # fmt: skip
SPECIAL_DECIMALS = [
    "1", "-1", "1.5", "-0", "0.0000000001", "0.00000000005", "1.12345678901", "1.1234567890",
    "1e5", "+1", ".5", "5.", "-.5", "1234567890123456789012345678", "12345678901234567890123456789",
    "1234567890123456789012345678.1234567890", "inf", "nan", " 1", "1_0", "00001.5",
]  # fmt: skip
SPECIAL_BOOLEANS = ["true", "false", "True", "FALSE", "tRuE", "t", "f", "T", "yes", "NO", "y", "n", "1",
                    "0", " true", "true ", "tru", "2", "on", "off", "ｔｒｕｅ"]  # fmt: skip


def canonical_values(column_type: ColumnType) -> st.SearchStrategy[str]:
    """Values in the forms the fast path converts (and a NULL now and then)."""
    by_type: dict[ColumnType, st.SearchStrategy[str]] = {
        L: st.integers(-(2**63), 2**63 - 1).map(str) | st.integers(-99, 99).map(lambda n: f"{n}.0"),
        D: st.floats(allow_nan=True, allow_infinity=True).map(repr) | st.integers(-(2**70), 2**70).map(str),
        DEC: st.decimals(-(10**27), 10**27, places=4).map(str) | st.integers(-(10**20), 10**20).map(str),
        DATE: st.dates().map(dt.date.isoformat),
        DT: st.datetimes().map(lambda d: d.isoformat(sep=" ")) | st.datetimes().map(dt.datetime.isoformat),
        B: st.sampled_from(["true", "false", "True", "FALSE", "t", "f", "yes", "no", "y", "n", "1", "0"]),
        S: st.text(st.characters(codec="utf-8"), max_size=8),
    }
    return by_type[column_type] | st.sampled_from(["", "\\N"])


def other_values(column_type: ColumnType) -> st.SearchStrategy[str]:
    """Values the dialect may or may not take, in forms the fast path may or may not convert."""
    by_type: dict[ColumnType, list[st.SearchStrategy[str]]] = {
        L: [st.sampled_from(SPECIAL_LONGS), st.integers(-(2**64), 2**64).map(str)],
        D: [st.sampled_from(SPECIAL_DOUBLES), st.floats(width=32).map(str)],
        DEC: [st.sampled_from(SPECIAL_DECIMALS), st.decimals(allow_nan=False, allow_infinity=False).map(str)],
        DATE: [st.sampled_from(SPECIAL_DATES), st.text("0123456789- T:", min_size=8, max_size=12)],
        DT: [st.sampled_from(SPECIAL_DATETIMES), st.text("0123456789- T:.Z+", min_size=10, max_size=28)],
        B: [st.sampled_from(SPECIAL_BOOLEANS), st.text("truefalsyno01TRUEFALSYNO ", max_size=5)],
        S: [st.sampled_from(['"', '""', ",", "\n", "\r\n", " ", "a\x00b", "\\N"])],
    }
    return st.one_of(*by_type[column_type], st.text(NUMBER_CHARS + "infatyINFATY:T", min_size=1, max_size=8))


@st.composite
def fields(draw: st.DrawFn, column_type: ColumnType, noise: float) -> bytes:
    """One field as a file may hold it; with probability ``noise`` an odd value or odd quoting."""
    odd = draw(st.floats(0, 1)) < noise
    value = draw(other_values(column_type) if odd else canonical_values(column_type))
    quoted = '"' + value.replace('"', '""') + '"'
    if value == "\\N" and not odd:
        return b"\\N"  # NULL only unquoted
    needs_quotes = any(c in value for c in ',"\r\n') or (column_type is S and value == "")
    forms = [quoted, f" {quoted}", f"{quoted} ", f"{quoted}x", f'{value}"', f'a"{value}'] if odd else [quoted]
    text = draw(st.sampled_from(forms if needs_quotes else [value, *forms]))
    raw = text.encode()
    if odd and draw(st.integers(0, 10)) == 0:  # not UTF-8: a stray byte, a surrogate, an overlong form
        raw += draw(st.sampled_from([b"\xff", b"\xed\xa0\x80", b"\xc0\xaf", b"\xe2\x82"]))
    return raw


@st.composite
def csv_files(draw: st.DrawFn) -> tuple[bytes, list[Column]]:
    """A file and its schema: most records well formed, some files with odd fields or records."""
    types = draw(st.lists(st.sampled_from(list(ColumnType)), min_size=1, max_size=4))
    columns = [Column(f"c{index}", column_type) for index, column_type in enumerate(types)]
    noise = draw(st.sampled_from([0.0, 0.0, 0.02, 0.2]))
    records = []
    for _ in range(draw(st.integers(0, 8))):
        row = [draw(fields(column_type, noise)) for column_type in types]
        if draw(st.floats(0, 1)) < noise:
            shape = draw(st.sampled_from(["short", "long", "blank line"]))
            row = {"short": row[:-1], "long": [*row, b"extra"], "blank line": row}[shape]
            if shape == "blank line":
                records.append(b"")
        records.append(b",".join(row))
    ending = draw(st.sampled_from([b"\n", b"\n", b"\r\n"]))

    def record_end() -> bytes:  # now and then the other style, or a lone CR
        return draw(st.sampled_from([b"\n", b"\r\n", b"\r"])) if draw(st.floats(0, 1)) < noise else ending

    data = b"".join(record + record_end() for record in records)
    if records and draw(st.booleans()):
        data = data[: -len(ending)] if data.endswith(ending) else data
    if draw(st.floats(0, 1)) < noise / 4:
        data = b"\xef\xbb\xbf" + data
    return data, columns


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(csv_files())
def test_whatever_the_fast_path_writes_the_strict_conversion_writes_too(
    tmp_path_factory: pytest.TempPathFactory, case: tuple[bytes, list[Column]]
) -> None:
    data, columns = case
    table = check(tmp_path_factory.mktemp("case"), data, columns)
    event("converted by the fast path" if table is not None else "declined")


@st.composite
def columns_of_values(draw: st.DrawFn) -> tuple[ColumnType, list[str]]:
    """Canonical values of one type, and in half the cases one other value among them."""
    column_type = draw(st.sampled_from(list(ColumnType)))
    values = draw(st.lists(canonical_values(column_type), max_size=10))
    if draw(st.booleans()):
        values.insert(draw(st.integers(0, len(values))), draw(other_values(column_type)))
    return column_type, values


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(columns_of_values())
def test_every_value_the_fast_path_converts_converts_the_same_strictly(
    tmp_path_factory: pytest.TempPathFactory, case: tuple[ColumnType, list[str]]
) -> None:
    # One column, every value quoted (but the NULL \\N): the quoting is canonical, so the values decide.
    column_type, values = case
    data = b"".join(
        (b"\\N" if v == "\\N" else b'"' + v.replace('"', '""').encode() + b'"') + b"\n" for v in values
    )
    table = check(tmp_path_factory.mktemp("values"), data, [Column("v", column_type)])
    event(f"{column_type.value}: " + ("converted by the fast path" if table is not None else "declined"))


# --- the fast path is taken for the common files ---------------------------------------------------

CANONICAL = (
    b'Alice,1,1.5,12.25,2024-01-01,2024-01-01 10:00:00,true,"x\ny"\n'
    b'"Bob, Jr.",-2,,0.1,2024-02-29,2024-01-02T00:00:00.5,False,""\n'
    b'"Carol ""C""",3.0,"",-7,,,,\\N\n'
    b',,1e+20,,"",2024-01-04 23:59:59.123456,1,\n'
)
ALL_TYPES = [Column("name", S), Column("n", L), Column("x", D), Column("amount", DEC), Column("day", DATE),
             Column("at", DT), Column("flag", B), Column("note", S)]  # fmt: skip


def test_a_canonical_file_with_every_type_takes_the_fast_path(tmp_path: Path) -> None:
    table = check(tmp_path, CANONICAL, ALL_TYPES)

    assert table is not None
    assert table.to_pylist()[2] == {
        "name": 'Carol "C"', "n": 3, "x": None, "amount": Decimal(-7), "day": None, "at": None,
        "flag": None, "note": None,
    }  # fmt: skip


def test_lineitem_rows_take_the_fast_path(tmp_path: Path) -> None:
    data = (
        b"1,155190,7706,1,17,21168.23,0.04,0.02,N,O,1996-03-13,1996-02-12,1996-03-22,DELIVER IN PERSON,"
        b'TRUCK,"egular courts above the"\n' * 3
    )
    types = [L, L, L, L, D, D, D, D, S, S, DATE, DATE, DATE, S, S, S]

    assert check(tmp_path, data, [Column(f"c{i}", t) for i, t in enumerate(types)]) is not None


def test_csv_to_parquet_reports_which_conversion_wrote_the_file(tmp_path: Path) -> None:
    canonical, other = tmp_path / "canonical.csv", tmp_path / "other.csv"
    canonical.write_bytes(b"1,a\n2,b\n")
    other.write_bytes(b"\xef\xbb\xbf1,a\n2,b\n")  # a byte order mark: strict only
    columns = [Column("n", L), Column("s", S)]

    assert csv_to_parquet(canonical, tmp_path / "1.parquet", columns).canonical
    assert not csv_to_parquet(other, tmp_path / "2.parquet", columns).canonical


def test_numbers_written_as_quoted_empty_strings_are_nulls_on_the_fast_path(tmp_path: Path) -> None:
    # Fully quoted files write a missing number as "", which is NULL outside STRING columns.
    data = b'"","1.5","a"\n"2","",""\n'

    table = check(tmp_path, data, [Column("n", L), Column("x", D), Column("s", S)])

    assert table is not None
    assert table.to_pylist() == [{"n": None, "x": 1.5, "s": "a"}, {"n": 2, "x": None, "s": ""}]


@pytest.mark.parametrize(
    ("data", "empty_quoted_fields"),
    [(b'"a","b"\n', False), (b'"","b"\n', True), (b'a,""\n', True), (b'"a""b",c\n', False),
     (b'"""a",b\n', True)],  # the last starts with an escaped quote: the scan cannot tell it from ""
)  # fmt: skip
def test_the_scan_finds_every_quoted_empty_field(
    tmp_path: Path, data: bytes, empty_quoted_fields: bool
) -> None:
    source = tmp_path / "in.csv"
    source.write_bytes(data)

    assert scan_layout(source) == Layout(canonical=True, empty_quoted_fields=empty_quoted_fields)


@pytest.mark.parametrize(
    "data",
    [
        b'"ab"c,1\n',  # text after a closing quote
        b'"ab" ,1\n',  # a space after it
        b'a, "1"\n',  # a space before an opening quote
        b'a"b,1\n',  # a quote inside an unquoted field
        b'"ab,1\n',  # a quote never closed
        b"a,1\rb,2\r",  # records ending with CR
        b"a,1\r\nb,2\r",  # the last one only
        b"a,1\r\nb,2\n",  # one record ending with CRLF, the next with LF
        b'"a\rb",1\r\n',  # a lone CR in a CRLF file, even quoted
        b'"a\r\nb",1\n',  # a CR in an LF file, even quoted
        b"\xef\xbb\xbfa,1\n",  # a byte order mark
        b"",  # nothing
    ],
)
def test_files_whose_quoting_parsers_may_read_differently_decline(tmp_path: Path, data: bytes) -> None:
    source = tmp_path / "in.csv"
    source.write_bytes(data)

    assert not scan_layout(source).canonical
    assert fast(tmp_path, source, [Column("s", S), Column("n", S)]) is None


@pytest.mark.parametrize(
    ("column_type", "value"),
    [(L, " 1"), (L, "0x10"), (L, "1e3"), (L, "+1"), (L, "9223372036854775808"), (D, "1_000"),
     (DATE, " 2024-01-01"), (DATE, "2024-01-01 00:00:00"), (DT, "2024-01-01T10"), (DT, "2024-01-01 10:00:00Z"),
     (DEC, "1.12345678901"), (B, " true")],
)  # fmt: skip
def test_values_outside_the_canonical_forms_decline(
    tmp_path: Path, column_type: ColumnType, value: str
) -> None:
    source = tmp_path / "in.csv"
    source.write_bytes(f"{value}\n".encode())

    assert fast(tmp_path, source, [Column("v", column_type)]) is None


@pytest.mark.parametrize(
    "data",
    [b"a,1\r\nb,2\r\n", b'"x\ny",1\r\n"z",2', b'"x\r\ny",1\r\n\r\nb,""\r\n', b"a,1\n"],
)
def test_files_with_lf_or_crlf_record_ends_take_the_fast_path(tmp_path: Path, data: bytes) -> None:
    # Windows pandas (pydomo) ends lines with CRLF; quoted fields keep their LF or CRLF.
    assert check(tmp_path, data, [Column("s", S), Column("n", L)]) is not None


def test_quote_checks_carry_across_the_scans_chunks(tmp_path: Path) -> None:
    # A quoted field spans the 4 MiB chunk boundary, and a closing quote is a chunk's last byte.
    chunk = 4 * 1024 * 1024
    good = b'"' + b"x" * (chunk - 2) + b'",1\n' + b'"a""b",2\n'
    bad = b'"' + b"x" * (chunk - 2) + b'"z,1\n'
    for data, canonical in ((good, True), (bad, False)):
        source = tmp_path / "in.csv"
        source.write_bytes(data)
        assert scan_layout(source).canonical is canonical


@pytest.mark.parametrize("length", [MAX_RECORD_BYTES - 1, MAX_RECORD_BYTES, MAX_RECORD_BYTES + 1])
def test_records_near_the_length_limit_are_treated_alike(tmp_path: Path, length: int) -> None:
    record = b"1," + b"x" * (length - 2)
    check(tmp_path, b"1,a\n" * 3 + record + b"\n" + b"2,b\n", [Column("n", L), Column("s", S)])


def test_a_record_longer_than_the_limit_declines(tmp_path: Path) -> None:
    source = tmp_path / "in.csv"
    source.write_bytes(b"1,a\n" + b"2," + b"x" * MAX_RECORD_BYTES + b"\n")

    assert fast(tmp_path, source, [Column("n", L), Column("s", S)]) is None


def test_a_large_file_is_written_in_row_groups_of_duckdbs_size_on_two_threads(tmp_path: Path) -> None:
    rows = 3 * ROW_GROUP_ROWS + 5
    source = tmp_path / "in.csv"
    source.write_bytes(b"".join(b"%d,row %d,2024-01-01\n" % (n, n) for n in range(rows)))
    columns = [Column("n", L), Column("s", S), Column("d", DATE)]

    table = fast(tmp_path, source, columns, threads=2)

    assert table is not None
    assert table.column("n").to_pylist() == list(range(rows))
    metadata = pq.ParquetFile(tmp_path / "fast.parquet").metadata
    sizes = [metadata.row_group(i).num_rows for i in range(metadata.num_row_groups)]
    assert sum(sizes) == rows
    assert all(ROW_GROUP_ROWS <= size < 2 * ROW_GROUP_ROWS for size in sizes[:-1])


def test_a_writer_that_fails_stops_the_read_ahead_thread(tmp_path: Path) -> None:
    source = tmp_path / "in.csv"
    source.write_bytes(b"".join(b"%d,row\n" % n for n in range(3 * ROW_GROUP_ROWS)))
    target = tmp_path / "missing" / "out.parquet"  # the writer cannot open it

    with pytest.raises(FileNotFoundError):  # not a problem of the file: the caller must hear of it
        convert_canonical(source, target, [Column("n", L), Column("s", S)], threads=2)

    assert not [t for t in threading.enumerate() if t.name == "csv-read-ahead"]
