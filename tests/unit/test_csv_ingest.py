"""CSV -> Parquet ingest: the Domo CSV dialect, exact Arrow types, and errors that name line, column
and value. Real DuckDB, files in tmp_path, results read back with pyarrow."""

from __future__ import annotations

import datetime as dt
import math
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from datagrove.errors import BadRequest, InvalidCsv
from datagrove.tables.csv_ingest import IngestedFile, csv_to_parquet
from datagrove.tables.types import Column, ColumnType

S, L, D, DEC = ColumnType.STRING, ColumnType.LONG, ColumnType.DOUBLE, ColumnType.DECIMAL
DATE, DT, B = ColumnType.DATE, ColumnType.DATETIME, ColumnType.BOOLEAN

PYDOMO_CSV = (
    b"Alice,1,1,1.5,True,2024-01-01 10:00:00.000000,2024-01-01 10:00:00+00:00,2024-01-01,1.10,a,"
    b'"x\ny"\n'
    b'"Bob, Jr.",2,,,False,2024-01-02 00:00:00.000000,2024-01-02 00:00:00+00:00,2024-01-02,2,b,z\n'
    b'"Carol ""C""",3,3,3.25,True,,2024-01-03 00:00:00+00:00,,,a,\n'
    b",4,4,1e+20,False,2024-01-04 23:59:59.123456,2024-01-04 00:00:00+00:00,2024-01-04,3.333,b, lead\n"
)
PYDOMO_SCHEMA = [
    Column("name", S),
    Column("id", L),
    Column("maybe_int", L),
    Column("score", D),
    Column("flag", S),
    Column("at", DT),
    Column("at_tz", S),
    Column("day", S),
    Column("amount", S),
    Column("category", S),
    Column("note", S),
]


def convert(tmp_path: Path, data: bytes, columns: list[Column], **options: object) -> pa.Table:
    source = tmp_path / "in.csv"
    source.write_bytes(data)
    result = csv_to_parquet(source, tmp_path / "out.parquet", columns, **options)  # type: ignore[arg-type]
    return pq.read_table(result.path)


def values(tmp_path: Path, data: bytes, column_type: ColumnType) -> list[object]:
    return convert(tmp_path, data, [Column("v", column_type)]).column("v").to_pylist()


def failure(tmp_path: Path, data: bytes, columns: list[Column], **options: object) -> InvalidCsv:
    with pytest.raises(InvalidCsv) as caught:
        convert(tmp_path, data, columns, **options)
    return caught.value


# --- the pydomo file and the shape of the output ----------------------------------------------


def test_pydomo_csv_converts_to_the_exact_values(tmp_path: Path) -> None:
    rows = convert(tmp_path, PYDOMO_CSV, PYDOMO_SCHEMA).to_pylist()

    assert [list(row.values()) for row in rows] == [
        ["Alice", 1, 1, 1.5, "True", dt.datetime(2024, 1, 1, 10), "2024-01-01 10:00:00+00:00",
         "2024-01-01", "1.10", "a", "x\ny"],
        ["Bob, Jr.", 2, None, None, "False", dt.datetime(2024, 1, 2), "2024-01-02 00:00:00+00:00",
         "2024-01-02", "2", "b", "z"],
        ['Carol "C"', 3, 3, 3.25, "True", None, "2024-01-03 00:00:00+00:00", None, None, "a", None],
        [None, 4, 4, 1e20, "False", dt.datetime(2024, 1, 4, 23, 59, 59, 123456),
         "2024-01-04 00:00:00+00:00", "2024-01-04", "3.333", "b", " lead"],
    ]  # fmt: skip


def test_parquet_columns_have_exactly_the_arrow_type_of_each_domo_type(tmp_path: Path) -> None:
    columns = [Column(f"c {t.value}", t) for t in ColumnType]
    data = b"s,1,1.5,2.25,2024-01-01,2024-01-01 10:00:00,true\n"

    table = convert(tmp_path, data, columns)

    assert table.schema == pa.schema([pa.field(c.name, c.type.arrow) for c in columns])


def test_column_names_with_spaces_quotes_commas_and_newlines_are_kept_exactly(tmp_path: Path) -> None:
    names = ["my column", 'say "hi"', "a,b", "two\nlines", "it's", "select"]

    table = convert(tmp_path, b"1,2,3,4,5,6\n", [Column(name, L) for name in names])

    assert table.column_names == names
    assert table.to_pylist() == [dict(zip(names, [1, 2, 3, 4, 5, 6], strict=True))]


def test_result_reports_the_parquet_path_row_count_and_size(tmp_path: Path) -> None:
    source = tmp_path / "in.csv"
    source.write_bytes(b"a\nb\nc\n")
    target = tmp_path / "out.parquet"

    result = csv_to_parquet(source, target, [Column("s", S)], threads=1)

    assert result == IngestedFile(path=target, rows=3, bytes=target.stat().st_size, canonical=True)


def test_empty_file_gives_zero_rows_with_the_full_schema(tmp_path: Path) -> None:
    columns = [Column("n", L), Column("s", S), Column("at", DT)]

    table = convert(tmp_path, b"", columns)

    assert table.num_rows == 0
    assert table.schema == pa.schema([pa.field(c.name, c.type.arrow) for c in columns])


def test_empty_schema_accepts_an_empty_file_and_rejects_any_data(tmp_path: Path) -> None:
    assert convert(tmp_path, b"", []).num_rows == 0
    assert failure(tmp_path, b"x\n", []).details["line"] == 1


def test_a_200k_row_file_keeps_every_row_in_file_order(tmp_path: Path) -> None:
    data = "".join(f'{i},"name {i}\nsecond line",{i * 0.5}\n' for i in range(200_000)).encode()

    table = convert(tmp_path, data, [Column("id", L), Column("name", S), Column("half", D)], threads=4)

    assert table.num_rows == 200_000
    assert table.column("id").to_pylist() == list(range(200_000))
    assert table.column("name")[199_999].as_py() == "name 199999\nsecond line"


# --- records, quoting and line endings -----------------------------------------------------------


def test_crlf_line_endings_are_accepted(tmp_path: Path) -> None:
    table = convert(tmp_path, b'a,1\r\n"b\r\nc",2\r\n', [Column("s", S), Column("n", L)])

    assert table.to_pylist() == [{"s": "a", "n": 1}, {"s": "b\r\nc", "n": 2}]


def test_crlf_file_whose_first_record_has_a_newline_inside_quotes_is_read(tmp_path: Path) -> None:
    # pandas on Windows writes CRLF records but keeps a cell's own "\n".
    table = convert(tmp_path, b'"x\ny",1\r\nz,2\r\n', [Column("s", S), Column("n", L)])

    assert table.to_pylist() == [{"s": "x\ny", "n": 1}, {"s": "z", "n": 2}]


def test_crlf_file_with_a_newline_in_its_first_record_keeps_crlfs_inside_later_quoted_fields(
    tmp_path: Path,
) -> None:
    # The file is rewritten with LF record endings for DuckDB; only the CRLFs that end records change.
    source = b'"x\ny",1\r\n"a\r\nb",2\r\n"say ""hi\r\n""",3\r\nz,4\r\n'
    table = convert(tmp_path, source, [Column("s", S), Column("n", L)])

    assert table.to_pylist() == [
        {"s": "x\ny", "n": 1},
        {"s": "a\r\nb", "n": 2},
        {"s": 'say "hi\r\n"', "n": 3},
        {"s": "z", "n": 4},
    ]


def test_the_lf_copy_knows_a_quoted_field_that_spans_its_read_chunks(tmp_path: Path) -> None:
    # The copy reads 8 MiB at a time; whether a CRLF is inside quotes carries over between reads.
    head = b'"x\ny",1\r\n'
    filler_lines = (8 * 1024 * 1024 - 100 - len(head)) // 5
    spanning = b'"open' + b"a" * 200 + b'\r\nclose",2\r\n'  # opens before 8 MiB, its CRLF is after
    source = head + b"f,0\r\n" * filler_lines + spanning + b"z,3\r\n"
    assert len(head) + 5 * filler_lines < 8 * 1024 * 1024 < len(source) - len(b'close",2\r\nz,3\r\n')
    table = convert(tmp_path, source, [Column("s", S), Column("n", L)])

    assert table.num_rows == filler_lines + 3
    assert table.column("s")[-2].as_py() == "open" + "a" * 200 + "\r\nclose"


def test_lf_file_keeps_a_crlf_inside_a_quoted_field(tmp_path: Path) -> None:
    assert values(tmp_path, b'"x\r\ny"\nz\n', S) == ["x\r\ny", "z"]


def test_the_final_line_ending_is_optional(tmp_path: Path) -> None:
    assert values(tmp_path, b"a\nb", S) == ["a", "b"]
    assert values(tmp_path, b"a\r\nb", S) == ["a", "b"]


def test_quoted_fields_may_hold_separators_quotes_and_newlines(tmp_path: Path) -> None:
    assert values(tmp_path, b'"a,b"\n"say ""hi"""\n"1\n2\n3"\n', S) == ["a,b", 'say "hi"', "1\n2\n3"]


def test_a_utf8_byte_order_mark_is_skipped(tmp_path: Path) -> None:
    assert values(tmp_path, b"\xef\xbb\xbfa\nb\n", S) == ["a", "b"]


def test_blank_lines_are_skipped_when_there_are_several_columns(tmp_path: Path) -> None:
    columns = [Column("s", S), Column("n", L)]
    expected = [{"s": "a", "n": 1}, {"s": "b", "n": 2}]

    assert convert(tmp_path, b"\na,1\n\n\nb,2\n\n", columns).to_pylist() == expected
    assert convert(tmp_path, b"\r\na,1\r\n\r\nb,2\r\n\r\n", columns).to_pylist() == expected


def test_a_blank_line_is_a_null_row_when_there_is_one_column(tmp_path: Path) -> None:
    assert values(tmp_path, b"a\n\nb\n", S) == ["a", None, "b"]


# --- NULLs -------------------------------------------------------------------------------------


def test_empty_unquoted_field_is_null_and_quoted_empty_field_is_an_empty_string(tmp_path: Path) -> None:
    assert values(tmp_path, b'\n""\n', S) == [None, ""]


def test_quoted_empty_field_is_null_in_every_other_type(tmp_path: Path) -> None:
    columns = [Column(t.value, t) for t in ColumnType if t is not S]

    table = convert(tmp_path, b",".join([b'""'] * len(columns)) + b"\n", columns)

    assert table.to_pylist() == [{c.name: None for c in columns}]


def test_unquoted_backslash_n_is_null_and_quoted_backslash_n_is_text(tmp_path: Path) -> None:
    assert values(tmp_path, b'\\N\n"\\N"\n', S) == [None, "\\N"]
    assert values(tmp_path, b"\\N\n", L) == [None]


# --- types -------------------------------------------------------------------------------------


def test_long_accepts_integers_and_integral_decimals(tmp_path: Path) -> None:
    data = b"1\n-2\n1.0\n-3.000\n9223372036854775807\n-9223372036854775808\n"

    assert values(tmp_path, data, L) == [1, -2, 1, -3, 2**63 - 1, -(2**63)]


def test_long_rejects_a_fraction_instead_of_rounding_it(tmp_path: Path) -> None:
    error = failure(tmp_path, b"1\n1.5\n", [Column("n", L)])

    assert error.message == 'line 2, column "n": "1.5" is not a LONG'


@pytest.mark.parametrize("text", ["1e3", "+1", " 1", "0x10", "1_000", "99999999999999999999", "one"])
def test_long_rejects_anything_but_plain_digits(tmp_path: Path, text: str) -> None:
    error = failure(tmp_path, text.encode() + b"\n", [Column("n", L)])

    assert error.details == {"line": 1, "column": "n", "value": text}


def test_double_accepts_python_and_java_float_syntax(tmp_path: Path) -> None:
    data = b"1e+20\n0.30000000000000004\n-3.5\n1.0E20\n7\ninf\n-inf\nInfinity\nnan\n"

    got = values(tmp_path, data, D)

    assert got[:7] == [1e20, 0.30000000000000004, -3.5, 1e20, 7.0, math.inf, -math.inf]
    assert got[7] == math.inf
    assert math.isnan(got[8])  # type: ignore[arg-type]


def test_double_rejects_text(tmp_path: Path) -> None:
    assert (
        failure(tmp_path, b"1.5\nabc\n", [Column("x", D)]).message
        == 'line 2, column "x": "abc" is not a DOUBLE'
    )


def test_decimal_keeps_ten_decimal_places_rounding_half_up(tmp_path: Path) -> None:
    got = values(tmp_path, b"1.10\n-3.5\n1e+20\n0.30000000000000004\n1.23456789015\n", DEC)

    assert got == [
        Decimal("1.1"),
        Decimal("-3.5"),
        Decimal("100000000000000000000"),
        Decimal("0.3"),
        Decimal("1.2345678902"),
    ]


@pytest.mark.parametrize("text", ["inf", "nan", "1" * 29, "abc"])
def test_decimal_rejects_non_finite_and_too_large_numbers(tmp_path: Path, text: str) -> None:
    assert failure(tmp_path, text.encode() + b"\n", [Column("d", DEC)]).details["value"] == text


def test_date_accepts_iso_dates_and_midnight_datetimes(tmp_path: Path) -> None:
    data = b"2024-01-31\n2024-02-29 00:00:00\n2024-03-01T00:00:00.000Z\n2024-03-02 00:00:00+00:00\n"

    assert values(tmp_path, data, DATE) == [
        dt.date(2024, 1, 31),
        dt.date(2024, 2, 29),
        dt.date(2024, 3, 1),
        dt.date(2024, 3, 2),
    ]


@pytest.mark.parametrize("text", ["2024-01-01 10:00:00", "2024-02-30", "01/02/2024", "2024/01/02", "today"])
def test_date_rejects_times_of_day_impossible_dates_and_other_formats(tmp_path: Path, text: str) -> None:
    error = failure(tmp_path, text.encode() + b"\n", [Column("d", DATE)])

    assert error.message == f'line 1, column "d": "{text}" is not a DATE'


def test_datetime_accepts_dates_either_separator_and_any_fraction(tmp_path: Path) -> None:
    data = (
        b"2024-01-01\n2024-01-01T10:00:00\n2024-01-01 10:00\n"
        b"2024-01-01 10:00:00.5\n2024-01-01 10:00:00.123456789\n"
    )

    assert values(tmp_path, data, DT) == [
        dt.datetime(2024, 1, 1),
        dt.datetime(2024, 1, 1, 10),
        dt.datetime(2024, 1, 1, 10),
        dt.datetime(2024, 1, 1, 10, 0, 0, 500000),
        dt.datetime(2024, 1, 1, 10, 0, 0, 123456),  # truncated, not rounded
    ]


def test_datetime_with_an_offset_is_converted_to_utc(tmp_path: Path) -> None:
    data = (
        b"2024-01-01 10:00:00+02:00\n2024-01-01T10:00:00Z\n"
        b"2024-01-01T10:00:00.25-05:30\n2024-01-01 01:00:00+0200\n"
    )

    assert values(tmp_path, data, DT) == [
        dt.datetime(2024, 1, 1, 8),
        dt.datetime(2024, 1, 1, 10),
        dt.datetime(2024, 1, 1, 15, 30, 0, 250000),
        dt.datetime(2023, 12, 31, 23),
    ]


@pytest.mark.parametrize("text", ["infinity", "epoch", "now", " 2024-01-01", "2024-13-01 00:00:00", "noon"])
def test_datetime_rejects_words_padding_and_impossible_values(tmp_path: Path, text: str) -> None:
    error = failure(tmp_path, text.encode() + b"\n", [Column("at", DT)])

    assert error.details == {"line": 1, "column": "at", "value": text}


def test_boolean_accepts_true_and_false_in_any_case_and_1_and_0(tmp_path: Path) -> None:
    data = b"true\nfalse\nTrue\nFalse\nTRUE\nFALSE\n1\n0\n"

    assert values(tmp_path, data, B) == [True, False] * 4


@pytest.mark.parametrize("text", ["2", "maybe", " true"])
def test_boolean_rejects_other_values(tmp_path: Path, text: str) -> None:
    assert failure(tmp_path, text.encode() + b"\n", [Column("b", B)]).details["value"] == text


def test_string_keeps_spaces_and_any_utf8_text(tmp_path: Path) -> None:
    text = "  padded  ,naïve 日本語 🎉,tab\there"

    assert values(tmp_path, f'"{text}"\n'.encode(), S) == [text]


# --- errors --------------------------------------------------------------------------------------


def test_too_few_fields_names_the_line_and_the_counts(tmp_path: Path) -> None:
    error = failure(tmp_path, b"a,1\nb\n", [Column("s", S), Column("n", L)])

    assert error.message == "line 2: expected 2 fields, found 1"
    assert error.details == {"line": 2, "column": None, "value": None}


def test_too_many_fields_names_the_line_and_the_counts(tmp_path: Path) -> None:
    error = failure(tmp_path, b"a,1\nb,2,3,4\n", [Column("s", S), Column("n", L)])

    assert error.message == "line 2: expected 2 fields, found 4"


def test_a_value_of_the_wrong_type_names_line_column_and_value(tmp_path: Path) -> None:
    error = failure(tmp_path, b"a,1\nb,2\nc,x\n", [Column("s", S), Column("n", L)])

    assert error.message == 'line 3, column "n": "x" is not a LONG'
    assert error.details == {"line": 3, "column": "n", "value": "x"}


def test_line_numbers_count_the_newlines_inside_quoted_fields(tmp_path: Path) -> None:
    head = b'a,1\n"two\nlines",2\n"three\r\nmore\nlines",3\n'  # records 1-3 span lines 1-6
    columns = [Column("s", S), Column("n", L)]

    assert failure(tmp_path, head + b"d,x\n", columns).details["line"] == 7
    assert failure(tmp_path, head + b"d\n", columns).details["line"] == 7
    assert failure(tmp_path, head + b'"d\ne",x\n', columns).details["line"] == 7


def test_line_numbers_count_skipped_blank_lines(tmp_path: Path) -> None:
    columns = [Column("s", S), Column("n", L)]

    assert failure(tmp_path, b"\na,1\n\n\nb,x\n", columns).details["line"] == 5
    assert failure(tmp_path, b"a,1\n\n\nb\nc,x\n", columns).message == "line 4: expected 2 fields, found 1"
    assert (
        failure(tmp_path, b'a,1\n\n"x\ny"\n\nc,x\n', columns).message == "line 3: expected 2 fields, found 1"
    )


def test_line_numbers_are_right_deep_in_a_large_file(tmp_path: Path) -> None:
    rows = [f'{i},"note {i}\nmore"\n' if i % 7 == 0 else f"{i},plain\n" for i in range(150_000)]
    data = "".join(rows).encode()
    line = data.count(b"\n") + 1
    columns = [Column("n", L), Column("s", S)]

    assert failure(tmp_path, data + b"1.5,x\n", columns, threads=4).details["line"] == line
    assert failure(tmp_path, data + b"1,x,y\n", columns, threads=4).details["line"] == line


def test_the_first_problem_in_the_file_is_reported(tmp_path: Path) -> None:
    columns = [Column("s", S), Column("n", L)]

    assert (
        failure(tmp_path, b"a,1\nb,x\nc\nd,y\n", columns).message == 'line 2, column "n": "x" is not a LONG'
    )
    assert failure(tmp_path, b"a,1\nb\nc,x\nd\n", columns).message == "line 2: expected 2 fields, found 1"


def test_the_first_bad_column_of_a_record_is_reported(tmp_path: Path) -> None:
    error = failure(tmp_path, b"x,2024-99-99\n", [Column("n", L), Column("d", DATE)])

    assert error.details["column"] == "n"


@pytest.mark.parametrize(
    "data", [b'a,1\n"b,2\nc,3\n', b'a,1\n"b"c,2\n', b'a,1\nb,"2\n'], ids=["unclosed", "after-quote", "at-end"]
)
def test_bad_quoting_names_the_line(tmp_path: Path, data: bytes) -> None:
    error = failure(tmp_path, data, [Column("s", S), Column("n", L)])

    assert error.message.startswith("line 2: a quoted field is not closed")
    assert error.details["line"] == 2


def test_invalid_utf8_names_the_line(tmp_path: Path) -> None:
    error = failure(tmp_path, b'a\n"b\nc"\nd\xff\n', [Column("s", S)])

    assert error.message == "line 4: not valid UTF-8"


def test_mixed_line_endings_name_the_first_line_of_the_other_style(tmp_path: Path) -> None:
    assert failure(tmp_path, b"a\nb\r\nc\n", [Column("s", S)]).message == (
        "line 2: ends with CRLF, but the file's first line ends with LF"
    )
    assert failure(tmp_path, b'a\r\n"b\nc"\r\nd\ne\r\n', [Column("s", S)]).message == (
        "line 4: ends with LF, but the file's first line ends with CRLF"
    )


def test_carriage_returns_alone_are_not_line_endings(tmp_path: Path) -> None:
    assert failure(tmp_path, b"a\rb\r", [Column("s", S)]).details["line"] == 1
    assert failure(tmp_path, b"a\nb\rc\n", [Column("s", S)]).details["line"] == 2


def test_a_record_longer_than_the_limit_is_rejected(tmp_path: Path) -> None:
    error = failure(tmp_path, b"a\n" + b"x" * 2_100_000 + b"\n", [Column("s", S)])

    assert error.message.startswith("line 2: the record is longer than")


def test_error_messages_carry_no_paths_or_duckdb_text(tmp_path: Path) -> None:
    cases = [b"a,1\nb\n", b"a,x\n", b'"a,1\n', b"a\xff,1\n", b"a,1\nb,2\r\n"]
    for data in cases:
        error = failure(tmp_path, data, [Column("s", S), Column("n", L)])
        assert str(tmp_path) not in error.message
        assert "Possible" not in error.message and "DuckDB" not in error.message and "\n" not in error.message
        assert len(error.message) < 150


def test_long_values_are_shortened_in_errors(tmp_path: Path) -> None:
    error = failure(tmp_path, b"x" * 5000 + b"\n", [Column("n", L)])

    assert len(error.message) < 300
    assert error.details["value"] == "x" * 200 + "…"


def test_label_prefixes_the_error_message(tmp_path: Path) -> None:
    error = failure(tmp_path, b"x\n", [Column("n", L)], label="part 3")

    assert error.message == 'part 3, line 1, column "n": "x" is not a LONG'


def test_an_error_writes_nothing_into_the_target_directory(tmp_path: Path) -> None:
    source = tmp_path / "in.csv"
    source.write_bytes(b'"x\ny",1\r\nb,2\r\nc,oops\r\n')  # also exercises the CRLF copy
    out = tmp_path / "out"
    out.mkdir()

    with pytest.raises(InvalidCsv):
        csv_to_parquet(source, out / "part.parquet", [Column("s", S), Column("n", L)])

    assert list(out.iterdir()) == []


def test_an_error_leaves_an_existing_target_untouched(tmp_path: Path) -> None:
    source = tmp_path / "in.csv"
    target = tmp_path / "out.parquet"
    source.write_bytes(b"1\n")
    csv_to_parquet(source, target, [Column("n", L)])
    before = target.read_bytes()
    source.write_bytes(b"x\n")

    with pytest.raises(InvalidCsv):
        csv_to_parquet(source, target, [Column("n", L)])

    assert target.read_bytes() == before


def test_column_names_that_differ_only_in_case_are_rejected(tmp_path: Path) -> None:
    source = tmp_path / "in.csv"
    source.write_bytes(b"1,2\n")

    with pytest.raises(BadRequest, match="more than once"):
        csv_to_parquet(source, tmp_path / "out.parquet", [Column("a", L), Column("A", L)])
