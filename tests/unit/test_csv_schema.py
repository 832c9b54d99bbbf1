"""The upload page's proposed schema (services/csv_schema.py): what it proposes, and the property that
makes it safe to propose: a file ingests with the schema guessed from its own text."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from datagrove.errors import BadRequest
from datagrove.services.csv_schema import infer_schema
from datagrove.tables.csv_ingest import csv_to_parquet
from datagrove.tables.types import ColumnType


def types_of(text: str, *, complete: bool = True) -> list[str]:
    return [column.type.value for column in infer_schema(text.encode(), complete=complete).columns]


def test_each_column_gets_the_narrowest_type_all_its_values_are_written_in() -> None:
    text = (
        "id,price,day,at,flag,name,empty\n"
        "1,2.5,2024-01-02,2024-01-02 10:00:00,true,ann,\n"
        "-2,3,2024-02-29,2024-02-03T11:30:00.25,FALSE,bob,\n"
    )
    assert types_of(text) == ["LONG", "DOUBLE", "DATE", "DATETIME", "BOOLEAN", "STRING", "STRING"]


def test_mixed_or_impossible_values_make_a_column_text() -> None:
    assert types_of("a,b,c\n1,2024-13-01,x\nx,2024-01-01,1\n") == ["STRING", "STRING", "STRING"]


def test_dates_beside_datetimes_make_a_datetime_column() -> None:
    assert types_of("at\n2024-01-02\n2024-01-02 10:00:00\n") == ["DATETIME"]


def test_the_header_is_cleaned_into_distinct_names_and_its_length_in_bytes_given() -> None:
    schema = infer_schema("\ufeffnäme, ,Name,name\n1,2,3,4\n".encode(), complete=True)
    assert [c.name for c in schema.columns] == ["näme", "column_2", "Name", "name_2"]
    assert schema.header_bytes == len("\ufeffnäme, ,Name,name\n".encode())


def test_a_sample_cut_mid_record_and_mid_character_drops_the_cut_record() -> None:
    whole = 'n,t\n1,"two\nlines"\n2,é\n3,xé'.encode()
    schema = infer_schema(whole[:-1], complete=False)  # cut inside the last é
    assert schema.preview == [["1", "two\nlines"], ["2", "é"]]
    assert [c.type for c in schema.columns] == [ColumnType.LONG, ColumnType.STRING]


@pytest.mark.parametrize(
    ("sample", "message"),
    [(b"", "empty"), (b" \n", "empty"), (b",,\n1,2,3\n", "no column names"), (b"a\n\xff\xfe\n", "not UTF-8")],
)
def test_files_without_a_header_or_not_text_are_refused_by_name(sample: bytes, message: str) -> None:
    with pytest.raises(BadRequest, match=message):
        infer_schema(sample, complete=True)


values = st.one_of(
    st.integers(-(10**12), 10**12).map(str),
    st.floats(allow_nan=False, allow_infinity=False, width=32).map(repr),
    st.dates().map(lambda d: d.isoformat()),
    st.datetimes().map(lambda d: d.isoformat(sep=" ", timespec="microseconds")),
    st.sampled_from(["true", "false", "True", "", "\\N", "1", "0"]),
    st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00\r"), max_size=8),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(columns=st.lists(st.lists(values, min_size=1, max_size=6), min_size=1, max_size=4))
def test_a_file_ingests_with_the_schema_guessed_from_it(columns: list[list[str]], tmp_path: Path) -> None:
    rows = max(len(column) for column in columns)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([f"c{i}" for i in range(len(columns))])
    for r in range(rows):
        writer.writerow([column[r] if r < len(column) else "" for column in columns])
    data = out.getvalue().encode()
    schema = infer_schema(data, complete=True)
    body = tmp_path / "body.csv"
    body.write_bytes(data[schema.header_bytes :])
    ingested = csv_to_parquet(body, tmp_path / "out.parquet", schema.columns)
    assert ingested.rows == rows
