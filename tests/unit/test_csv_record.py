"""The one-row append's record handling (csv_record) against the strict conversion (csv_ingest).

The properties that make the append's quick check safe, whatever the record:

* splitting a record and writing its fields back (``encode_record``) keeps its meaning: the strict
  conversion reads the same row from the written line as from the record itself, or rejects both;
* ``certainly_valid`` never says yes to a line the strict conversion rejects;
* with another delimiter, a record splits into the fields it was written from.

Hypothesis builds records from canonical, odd and broken values (the pools of the fast CSV path's
own differential test) with every way of quoting them. Other tests pin that the common rows do
pass the quick check, which the properties alone would not notice if it said "not sure" to all.
"""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from datagrove.errors import BadRequest, InvalidCsv
from datagrove.tables.csv_ingest import csv_to_parquet
from datagrove.tables.csv_record import (
    Field,
    certainly_valid,
    check_delimiter,
    encode_record,
    split_record,
    split_strictly,
)
from datagrove.tables.types import Column, ColumnType
from tests.unit.test_csv_canonical import canonical_values, comparable, other_values

EXAMPLES = int(os.environ.get("DATAGROVE_FUZZ_EXAMPLES", "300"))
S, L, D, DEC = ColumnType.STRING, ColumnType.LONG, ColumnType.DOUBLE, ColumnType.DECIMAL
DATE, DT, B = ColumnType.DATE, ColumnType.DATETIME, ColumnType.BOOLEAN


def strict(folder: Path, data: str, columns: list[Column]) -> list[list[object]] | None:
    """The rows the strict conversion reads from ``data`` (None if it rejects it), comparable."""
    source = folder / "in.csv"
    source.write_bytes(data.encode("utf-8", "surrogatepass"))
    target = folder / "out.parquet"
    try:
        csv_to_parquet(source, target, columns, threads=1, fast_path=False)
    except InvalidCsv:
        return None
    table = pq.read_table(target)
    return [comparable(table.column(i)) for i in range(table.num_columns)]


def quoted(value: str) -> str:
    return '"' + value.replace('"', '""') + '"'


@st.composite
def records(draw: st.DrawFn) -> tuple[str, list[Column]]:
    """One record (comma-separated) and a schema, sometimes with too few or too many fields."""
    types = draw(st.lists(st.sampled_from(list(ColumnType)), min_size=1, max_size=4))
    columns = [Column(f"c{index}", column_type) for index, column_type in enumerate(types)]
    noise = draw(st.sampled_from([0.0, 0.1, 0.3]))
    texts = []
    for column_type in types:
        odd = draw(st.floats(0, 1)) < noise
        value = draw(other_values(column_type) if odd else canonical_values(column_type))
        must_quote = any(c in value for c in ',"\r\n') or (value == "" and draw(st.booleans()))
        forms = [quoted(value)] if must_quote else [value, quoted(value)]
        if odd:
            forms += [f" {quoted(value)}", f"{quoted(value)}x", f'a"{value}']
        texts.append(draw(st.sampled_from(forms)))
    if draw(st.floats(0, 1)) < noise:
        texts = draw(st.sampled_from([texts[:-1], [*texts, "extra"], texts]))
    record = ",".join(texts)
    if draw(st.floats(0, 1)) < noise:
        record += draw(st.sampled_from(["\n", "\r\n", "\ufeff", "\nmore", "\r"]))
    if draw(st.floats(0, 1)) < noise / 2:
        record = "\ufeff" + record
    return record, columns


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(records())
def test_a_split_and_rewritten_record_converts_as_the_record_itself(
    tmp_path_factory: pytest.TempPathFactory, case: tuple[str, list[Column]]
) -> None:
    record, columns = case
    folder = tmp_path_factory.mktemp("case")
    try:
        fields = split_record(record, ",")
        if fields is None:
            event("split strictly")
            fields = split_strictly(record, len(columns), folder)
    except (BadRequest, InvalidCsv):
        # Refused: the strict conversion rejects it too, or it holds a line end (several records).
        assert "\n" in record or "\r" in record or strict(folder, record + "\n", columns) is None
        event("not one record")
        return
    line = encode_record(fields)
    from_line = strict(folder, line, columns)
    from_record = strict(folder, record if record.endswith("\n") else record + "\n", columns)
    if len(fields) == len(columns):
        assert from_line == from_record
    else:  # refused for its number of fields; the strict conversion finds no single row either
        assert from_line is None and (from_record is None or len(from_record[0]) != 1)
    if certainly_valid(fields, columns):
        assert from_line is not None, f"certainly_valid accepted what strict rejects: {line!r}"
        event("certainly valid")
    else:
        event("strict check needed" if from_line is not None else "rejected")


@settings(max_examples=EXAMPLES, deadline=None)
@given(
    st.lists(st.one_of(st.none(), st.text(st.characters(codec="utf-8"), max_size=6)), min_size=1, max_size=5),
    st.sampled_from(["|", "\t", ";", " ", "a", "é"]),
    st.data(),
)
def test_a_record_with_another_delimiter_splits_into_its_fields(
    fields: list[Field], delimiter: str, data: st.DataObject
) -> None:
    texts = []
    for field in fields:
        if field is None:
            texts.append(data.draw(st.sampled_from(["", "\\N"])))
        elif (
            field == ""
            or field == "\\N"
            or any(c in field for c in f'"\r\n{delimiter}')
            or field.startswith("\ufeff")
        ):
            texts.append(quoted(field))
        else:
            texts.append(data.draw(st.sampled_from([field, quoted(field)])))
    assert split_record(delimiter.join(texts), delimiter) == fields


def test_common_rows_pass_the_quick_check(tmp_path: Path) -> None:
    columns = [Column("n", L), Column("s", S), Column("x", D), Column("d", DATE), Column("t", DT),
               Column("b", B), Column("m", DEC)]  # fmt: skip
    rows = [
        "1,hello,1.5,2024-01-31,2024-01-31 10:00:00,true,12.34",
        '-7,"with, comma",1e-3,2024-02-29,2024-01-31T10:00:00.123456,False,-0.5',
        '0,"say ""hi""",,,,,',
        '\\N,"",0,2024-01-01,2024-01-01,1,0',
        '12.0,"multi\nline",-2.5E+10,1999-12-31,1999-12-31 23:59:59,no,100',
    ]
    for row in rows:
        fields = split_record(row, ",")
        assert fields is not None and certainly_valid(fields, columns), row
        assert strict(tmp_path, encode_record(fields), columns) is not None


@pytest.mark.parametrize(
    ("column_type", "value"),
    [
        (L, "9223372036854775808"),
        (L, "1.5"),
        (D, "1_000"),
        (D, "inf"),
        (DEC, "12345678901234567890123456789"),
        (DATE, "2023-02-29"),
        (DATE, "0000-01-01"),
        (DT, "2024-01-01T10:00:00+01:00"),
        (DT, "2024-01-01 10:00:00.1234567"),
        (B, "maybe"),
        (S, "a\x00b"),
        (S, "\ud800"),
    ],
)
def test_odd_values_are_left_to_the_strict_conversion(column_type: ColumnType, value: str) -> None:
    assert not certainly_valid([value], [Column("c", column_type)])


def test_nulls_and_empty_strings_keep_apart_through_a_rewrite(tmp_path: Path) -> None:
    columns = [Column("a", S), Column("b", S), Column("c", L)]
    fields = split_record('"",\\N,""', ",")
    assert fields == ["", None, ""]
    assert encode_record(fields) == '"",,""\n'
    rows = strict(tmp_path, encode_record(fields), columns)
    assert rows == [[""], [None], [None]]


def test_a_single_null_field_is_written_as_a_record_not_a_blank_line(tmp_path: Path) -> None:
    assert encode_record([None]) == "\\N\n"
    assert strict(tmp_path, encode_record([None]), [Column("a", L)]) == [[None]]


@pytest.mark.parametrize(
    ("values", "problem"),
    [
        ('"open', "not closed"),
        ('"a"b|1', "after its closing quote"),
        ('a"b|1', "inside an unquoted field"),
        ("1\n2", "exactly one row"),
        ("1\r2", "exactly one row"),
    ],
)
def test_what_is_not_one_record_is_refused_naming_why(values: str, problem: str) -> None:
    with pytest.raises(BadRequest, match=problem):
        split_record(values, "|")


def test_the_dialects_lenient_quoting_is_left_to_the_strict_reader(tmp_path: Path) -> None:
    # DuckDB's reader takes a quote inside an unquoted field as a character, and spaces around a
    # quoted field; the quick splitter leaves such records to it.
    assert split_record('a"b,c', ",") is None
    assert split_strictly('a"b,c', 2, tmp_path) == ['a"b', "c"]
    assert split_record(' "x" ,y', ",") is None
    assert split_strictly(' "x" ,y', 2, tmp_path) == ["x", "y"]


def test_one_trailing_line_end_and_a_byte_order_mark_are_not_part_of_the_record() -> None:
    assert split_record("\ufeffa,b\r\n", ",") == ["a", "b"]
    assert split_record("a,b\n", ",") == ["a", "b"]
    assert split_record("a,", ",") == ["a", None]


@pytest.mark.parametrize("delimiter", [",,", '"', "\n", "\r", 5, ["|"]])
def test_a_delimiter_must_be_one_character_other_than_a_quote_or_line_end(delimiter: object) -> None:
    with pytest.raises(BadRequest, match="delimiter"):
        check_delimiter(delimiter)


def test_no_delimiter_means_a_comma() -> None:
    assert check_delimiter(None) == ","
    assert check_delimiter("") == ","
    assert check_delimiter("\t") == "\t"
