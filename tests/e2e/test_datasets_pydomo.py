"""The DataSet API, driven end to end by the unmodified pydomo SDK against a real server."""

from __future__ import annotations

import csv
import io

import pandas as pd
import pytest
from pydomo.datasets import Column, ColumnType, DataSetRequest, Schema, Sorting, UpdateMethod

pytestmark = pytest.mark.s3_storage

FRIENDS = Schema([Column(ColumnType.STRING, "Friend"), Column(ColumnType.STRING, "Attending")])


def create(domo, name: str, schema: Schema = FRIENDS, description: str = "") -> str:
    request = DataSetRequest()
    request.name = name
    request.description = description
    request.schema = schema
    return domo.datasets.create(request)["id"]


def test_a_token_from_pydomo_is_a_jwt_with_an_expiry(domo):
    # pydomo decodes the JWT payload itself and would refresh before every call without 'exp'.
    assert domo.transport.token_expiration > 0
    assert domo.transport.access_token.count(".") == 2


def test_create_returns_the_dataset_with_a_string_id_and_its_schema(domo, unique):
    body = {
        "name": f"party {unique}",
        "description": "guests",
        "schema": {"columns": [{"type": "STRING", "name": "Friend"}]},
    }
    created = domo.datasets.create(body)
    assert isinstance(created["id"], str)
    assert created["name"] == f"party {unique}"
    assert created["schema"] == {"columns": [{"type": "STRING", "name": "Friend"}]}
    assert created["rows"] == 0 and created["columns"] == 1
    assert created["owner"]["id"] > 0


def test_import_replace_then_append_then_export(domo, unique):
    dataset_id = create(domo, f"friends {unique}")
    domo.datasets.data_import(dataset_id, '"Pythagoras","FALSE"\n"Alan Turing","TRUE"\n"George Boole","TRUE"')
    domo.datasets.data_import(dataset_id, "Ada Lovelace,TRUE\n", UpdateMethod.APPEND)
    exported = domo.datasets.data_export(dataset_id, include_csv_header=True)
    rows = list(csv.reader(io.StringIO(exported)))
    assert rows == [
        ["Friend", "Attending"],
        ["Pythagoras", "FALSE"],
        ["Alan Turing", "TRUE"],
        ["George Boole", "TRUE"],
        ["Ada Lovelace", "TRUE"],
    ]
    assert domo.datasets.get(dataset_id)["rows"] == 4

    domo.datasets.data_import(dataset_id, "Euler,TRUE\n", UpdateMethod.REPLACE)
    assert domo.datasets.data_export(dataset_id, include_csv_header=False).strip() == '"Euler","TRUE"'
    assert domo.datasets.get(dataset_id)["rows"] == 1


def test_import_from_a_file_is_streamed(domo, unique, tmp_path):
    dataset_id = create(
        domo, f"file {unique}", Schema([Column(ColumnType.LONG, "n"), Column(ColumnType.STRING, "s")])
    )
    path = tmp_path / "rows.csv"
    path.write_text("".join(f"{i},row {i}\n" for i in range(50_000)))
    domo.datasets.data_import_from_file(dataset_id, str(path))
    assert domo.datasets.get(dataset_id)["rows"] == 50_000
    result = domo.ds_query(dataset_id, "SELECT COUNT(*) AS c, SUM(n) AS total FROM table")
    assert result.iloc[0].tolist() == [50_000, sum(range(50_000))]


def test_ds_get_round_trips_every_type(domo, unique):
    schema = Schema(
        [
            Column(ColumnType.STRING, "name"),
            Column(ColumnType.LONG, "count"),
            Column(ColumnType.DOUBLE, "ratio"),
            Column(ColumnType.DECIMAL, "price"),
            Column(ColumnType.DATE, "day"),
            Column(ColumnType.DATETIME, "at"),
        ]
    )
    dataset_id = create(domo, f"typed {unique}", schema)
    domo.datasets.data_import(
        dataset_id,
        '"Bob, Jr.",2,0.5,1.10,2024-01-02,2024-01-02 10:00:00\n'
        '"Carol ""C""",,1e+20,,,\n'
        "Dan,-7,-3.25,3.333,2024-03-04,2024-03-04T23:59:59\n",
    )
    frame = domo.ds_get(dataset_id)
    assert list(frame.columns) == ["name", "count", "ratio", "price", "day", "at"]
    assert str(frame["count"].dtype) == "Int64"
    assert str(frame["at"].dtype).startswith("datetime64")
    assert frame["name"].tolist() == ["Bob, Jr.", 'Carol "C"', "Dan"]
    assert frame["count"].tolist()[0] == 2 and pd.isna(frame["count"].tolist()[1])
    assert frame["ratio"].tolist()[1] == 1e20
    assert frame["price"].tolist()[0] == pytest.approx(1.1)
    assert pd.isna(frame["price"].tolist()[1])
    assert frame["at"].tolist()[2] == pd.Timestamp("2024-03-04 23:59:59")
    assert frame["day"].tolist()[0] == pd.Timestamp("2024-01-02")


def test_ds_query_answers_columns_and_rows(domo, unique):
    dataset_id = create(domo, f"query {unique}")
    domo.datasets.data_import(dataset_id, "a,TRUE\nb,FALSE\nc,TRUE\n")
    frame = domo.ds_query(
        dataset_id, "SELECT Attending, COUNT(*) AS n FROM table GROUP BY Attending ORDER BY n DESC"
    )
    assert frame.values.tolist() == [["TRUE", 2], ["FALSE", 1]]
    raw = domo.datasets.query(
        dataset_id, f"SELECT `Friend` FROM `{dataset_id}` WHERE Friend <> 'b' ORDER BY 1"
    )
    assert raw["columns"] == ["Friend"]
    assert raw["rows"] == [["a"], ["c"]]
    assert raw["numRows"] == 2 and raw["numColumns"] == 1 and raw["datasource"] == dataset_id
    assert raw["metadata"][0]["type"] == "STRING"


def test_list_pages_filters_by_name_and_ends_with_an_empty_page(domo, unique):
    ids = {create(domo, f"listed {unique} {i}") for i in range(5)}
    found = list(domo.datasets.list(per_page=2, name_like=f"LISTED {unique}"))
    assert {d["id"] for d in found} == ids
    assert list(domo.datasets.list(sort=Sorting.NAME, name_like=unique, offset=100)) == []
    names = [d["name"] for d in domo.datasets.list(sort=Sorting.NAME, name_like=f"listed {unique}")]
    assert names == sorted(names)
    frame = domo.ds_list(name_like=f"listed {unique}")
    assert len(frame) == 5


def test_update_changes_name_description_and_schema(domo, unique):
    dataset_id = create(domo, f"update {unique}")
    domo.datasets.data_import(dataset_id, "x,1\ny,2\n")
    updated = domo.datasets.update(dataset_id, {"name": f"renamed {unique}", "description": "new"})
    assert updated["name"] == f"renamed {unique}" and updated["description"] == "new"
    schema = {
        "columns": [
            {"type": "STRING", "name": "Friend"},
            {"type": "LONG", "name": "Attending"},
            {"type": "DOUBLE", "name": "extra"},
        ]
    }
    updated = domo.datasets.update(dataset_id, {"schema": schema})
    assert updated["schema"] == schema
    # Rows survive a schema change: the retyped column is cast, the new one is null.
    assert domo.ds_query(dataset_id, "SELECT * FROM table ORDER BY Friend").values.tolist()[0][:2] == ["x", 1]
    domo.datasets.data_import(dataset_id, "z,3,0.5\n")
    assert domo.datasets.data_export(dataset_id, include_csv_header=False) == '"z",3,0.5\n'


def test_delete_answers_204_and_then_404(domo, unique):
    dataset_id = create(domo, f"delete {unique}")
    domo.datasets.delete(dataset_id)
    with pytest.raises(Exception, match="404"):
        domo.datasets.get(dataset_id)


def test_decimal_values_keep_every_digit_in_query_results(server, unique):
    with server.client() as client:
        schema = {"columns": [{"type": "DECIMAL", "name": "amount"}]}
        dataset_id = client.post("/v1/datasets", json={"name": f"dec {unique}", "schema": schema}).json()[
            "id"
        ]
        client.put(f"/v1/datasets/{dataset_id}/data", content=b"12345678901234567890.1234567891\n1.10\n")
        answer = client.post(
            f"/v1/datasets/query/execute/{dataset_id}", json={"sql": "SELECT amount FROM table"}
        )
        assert b"[12345678901234567890.1234567891]" in answer.content and b"[1.1]" in answer.content
