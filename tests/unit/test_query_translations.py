"""The query service keeps recent translations: a kept one is exactly what translating again gives,
and a query that does not translate fails every time."""

from __future__ import annotations

import pytest

from datagrove.errors import InvalidSql
from datagrove.services.query import _translation
from datagrove.tables.sql_translate import translate

QUERIES = [
    "SELECT COUNT(*) FROM table",
    "SELECT a, SUM(b) FROM `table` GROUP BY a ORDER BY 2 DESC LIMIT 5",
    "SELECT DATE_SUB('1998-12-01', INTERVAL 90 DAY) AS d, 'x', a+1 FROM table",
    "WITH t AS (SELECT a FROM table) SELECT * FROM t WHERE a IN (SELECT a FROM `table`)",
]


@pytest.mark.parametrize("sql", QUERIES)
def test_a_kept_translation_is_what_translating_gives(sql):
    for _ in range(2):
        assert _translation(sql, "ds1") == translate(sql, dataset_names=["ds1"])
    assert _translation(sql, "ds2") == translate(sql, dataset_names=["ds2"])


def test_a_query_that_does_not_translate_fails_every_time():
    for _ in range(2):
        with pytest.raises(InvalidSql):
            _translation("SELECT * FROM read_csv('/etc/passwd')", "ds1")


def test_a_long_query_is_translated_without_being_kept():
    sql = "SELECT " + " + ".join(["1"] * 5000) + " FROM table"
    assert _translation(sql, "ds1") == translate(sql, dataset_names=["ds1"])
