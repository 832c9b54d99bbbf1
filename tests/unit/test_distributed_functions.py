"""The distributed engine lets a query call only functions that compute on their arguments: Daft
also has functions that read and write URLs and files, which the DuckDB sandbox's locks do not
cover there."""

from __future__ import annotations

import pytest

from datagrove.errors import InvalidSql
from datagrove.tables.distributed import require_plain_functions
from datagrove.tables.sql_translate import translate


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT l_returnflag, SUM(l_quantity * (1 - l_discount)) AS s, AVG(x), COUNT(*) FROM table "
        "WHERE l_shipdate <= DATE_SUB('1998-12-01', INTERVAL 90 DAY) AND (a = 1 OR b IS NULL) "
        "GROUP BY l_returnflag ORDER BY l_returnflag",
        "SELECT CASE WHEN a BETWEEN 1 AND 2 THEN UPPER(b) END, IFNULL(a, 0), NOT (a IN (1, 2)) FROM table",
        "SELECT YEAR(d), ROUND(x, 2), CAST(a AS CHAR), b LIKE 'x%' FROM table",
    ],
)
def test_plain_functions_and_operators_are_allowed(sql):
    require_plain_functions(translate(sql, dataset_names=[]))


@pytest.mark.parametrize(
    "function", ["url_download(a)", "url_upload(a, 'file:///tmp/x')", "file(a)", "some_new_function(a)"]
)
def test_functions_that_reach_files_or_are_unknown_are_refused(function):
    with pytest.raises(InvalidSql, match="distributed engine"):
        require_plain_functions(f'SELECT {function} AS f FROM "dataset"')
