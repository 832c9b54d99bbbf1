"""Translation of Domo's MySQL-flavoured queries into DuckDB SQL over the sandbox's "dataset" view.

Rewrites are checked against the exact DuckDB text; MySQL functions are checked by running the
translation in the real sandbox over a Parquet file, since the answer is what matters there.
"""

from __future__ import annotations

import re
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from datagrove.errors import InvalidSql
from datagrove.tables.sandbox import QueryLimits, run_query
from datagrove.tables.sql_translate import table_names, translate, translate_over

DATASET_ID = "6f1c2e3a-9b7d-4c1e-8f00-5a2b3c4d5e6f"


def duckdb_sql(sql: str) -> str:
    return translate(sql, dataset_names=[DATASET_ID])


def refusal(sql: str) -> str:
    with pytest.raises(InvalidSql) as caught:
        duckdb_sql(sql)
    return caught.value.message


# --- the dataset's names ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mysql", "duckdb"),
    [
        ("SELECT * FROM table", 'SELECT * FROM "dataset" AS "table"'),
        ("select * from TABLE", 'SELECT * FROM "dataset" AS "TABLE"'),
        ("SELECT * FROM Table", 'SELECT * FROM "dataset" AS "Table"'),
        ("SELECT * FROM `table`", 'SELECT * FROM "dataset" AS "table"'),
        ("SELECT * FROM `TABLE`", 'SELECT * FROM "dataset" AS "TABLE"'),
    ],
)
def test_table_in_any_case_or_quoting_reads_the_dataset_view(mysql, duckdb):
    assert duckdb_sql(mysql) == duckdb


@pytest.mark.parametrize(
    ("mysql", "duckdb"),
    [
        ("SELECT * FROM table t", 'SELECT * FROM "dataset" AS t'),
        ("SELECT * FROM table AS t", 'SELECT * FROM "dataset" AS t'),
        ("SELECT * FROM `table` AS `t`", 'SELECT * FROM "dataset" AS "t"'),
        (
            "SELECT t1.a FROM table t1 JOIN table t2 ON t1.a = t2.b",
            'SELECT t1.a FROM "dataset" AS t1 JOIN "dataset" AS t2 ON t1.a = t2.b',
        ),
    ],
)
def test_an_alias_the_user_gave_is_kept(mysql, duckdb):
    assert duckdb_sql(mysql) == duckdb


def test_columns_qualified_by_table_still_resolve():
    assert duckdb_sql("SELECT table.col FROM table") == 'SELECT "table".col FROM "dataset" AS "table"'
    assert (
        duckdb_sql("SELECT a FROM table JOIN table t2 ON table.a = t2.a")
        == 'SELECT a FROM "dataset" AS "table" JOIN "dataset" AS t2 ON "table".a = t2.a'
    )


def test_the_dataset_id_names_the_dataset_in_any_case():
    assert duckdb_sql(f"SELECT * FROM `{DATASET_ID}`") == f'SELECT * FROM "dataset" AS "{DATASET_ID}"'
    upper = DATASET_ID.upper()
    assert duckdb_sql(f"SELECT `{upper}`.a FROM `{upper}` LIMIT 1") == (
        f'SELECT "{upper}".a FROM "dataset" AS "{upper}" LIMIT 1'
    )


def test_a_cte_may_read_the_dataset_and_be_read_by_name():
    assert duckdb_sql("WITH c AS (SELECT a FROM table) SELECT * FROM c JOIN table t ON c.a = t.a") == (
        'WITH c AS (SELECT a FROM "dataset" AS "table") SELECT * FROM c JOIN "dataset" AS t ON c.a = t.a'
    )


def test_a_recursive_cte_may_read_itself():
    sql = "WITH RECURSIVE r AS (SELECT 1 AS n UNION ALL SELECT n + 1 FROM r WHERE n < 3) SELECT * FROM r"
    assert duckdb_sql(sql) == sql


@pytest.mark.parametrize("operator", ["UNION", "UNION ALL", "INTERSECT", "EXCEPT"])
def test_the_dataset_may_be_combined_with_itself(operator):
    assert duckdb_sql(f"SELECT a FROM table {operator} SELECT a FROM `table` t") == (
        f'SELECT a FROM "dataset" AS "table" {operator} SELECT a FROM "dataset" AS t'
    )


def test_subqueries_anywhere_read_the_dataset():
    assert duckdb_sql(
        "SELECT * FROM (SELECT a FROM table) s WHERE a IN (SELECT a FROM table) "
        "AND EXISTS (SELECT 1 FROM table x JOIN LATERAL (SELECT 1) l ON TRUE)"
    ) == (
        'SELECT * FROM (SELECT a FROM "dataset" AS "table") AS s '
        'WHERE a IN (SELECT a FROM "dataset" AS "table") '
        'AND EXISTS(SELECT 1 FROM "dataset" AS x JOIN LATERAL (SELECT 1) AS l ON TRUE)'
    )


def test_mysql_value_rows_become_duckdb_value_rows():
    assert duckdb_sql("VALUES ROW(1, 'a'), ROW(2, 'b')") == "VALUES (1, 'a'), (2, 'b')"


def test_a_trailing_semicolon_is_allowed():
    assert duckdb_sql("SELECT * FROM table;") == 'SELECT * FROM "dataset" AS "table"'
    assert duckdb_sql("SELECT 1;;") == 'SELECT 1 AS "1"'


def test_backquoted_names_become_double_quoted():
    assert duckdb_sql("SELECT `my col` FROM table") == 'SELECT "my col" FROM "dataset" AS "table"'


def test_mysql_strings_become_duckdb_strings():
    assert duckdb_sql("""SELECT 'it\\'s', "double" FROM table""") == (
        '''SELECT 'it''s' AS "it's", 'double' AS "double" FROM "dataset" AS "table"'''
    )


def test_comments_and_optimizer_hints_are_left_out():
    assert duckdb_sql("SELECT /*+ NO_INDEX(t) */ a -- the a */ , b\nFROM table t # end") == (
        'SELECT a FROM "dataset" AS t'
    )


# --- MySQL functions give MySQL's answers -------------------------------------------------------

ROWS = pa.table(
    {
        "name": ["ann", None, "cy", "ann"],
        "city": ["Oslo", "Rome", "Oslo", "Lima"],
        "sold": pa.array([1_700_000_000, 1_700_086_400, 1_700_172_800, 1_700_259_200], pa.timestamp("s")),
        "amount": [10, 20, 30, 40],
    }
)


@pytest.fixture
def run(tmp_path: Path):
    path = tmp_path / "part-0.parquet"
    pq.write_table(ROWS, path)

    def run(mysql: str) -> list[dict]:
        return run_query(
            translate(mysql, dataset_names=[DATASET_ID]),
            view_sql=f"SELECT * FROM read_parquet(['{path}'])",
            files=[str(path)],
            limits=QueryLimits(timeout_seconds=10, max_rows=100),
        ).to_pylist()

    return run


def test_ifnull_and_concat(run):
    rows = run("SELECT CONCAT(IFNULL(name, '?'), '@', city) AS who FROM table ORDER BY amount")
    assert [r["who"] for r in rows] == ["ann@Oslo", "?@Rome", "cy@Oslo", "ann@Lima"]


def test_date_format(run):
    rows = run("SELECT DATE_FORMAT(sold, '%Y-%m-%d %H:%i') AS d FROM `table` ORDER BY sold LIMIT 1")
    assert rows == [{"d": "2023-11-14 22:13"}]


def test_limit_with_an_offset(run):
    rows = run("SELECT amount FROM table ORDER BY amount LIMIT 1, 2")
    assert rows == [{"amount": 20}, {"amount": 30}]


def test_count_distinct_with_group_by_position(run):
    rows = run("SELECT city, COUNT(DISTINCT name) AS n FROM table GROUP BY 1 ORDER BY 1")
    assert rows == [{"city": "Lima", "n": 1}, {"city": "Oslo", "n": 2}, {"city": "Rome", "n": 0}]


def test_qualified_columns_and_the_dataset_id_run(run):
    rows = run(
        f"SELECT table.amount FROM table JOIN `{DATASET_ID}` d ON table.amount = d.amount WHERE d.amount > 30"
    )
    assert rows == [{"amount": 40}]


# --- result columns are named as MySQL names them ---------------------------------------------


@pytest.fixture
def names(tmp_path: Path):
    path = tmp_path / "part-0.parquet"
    pq.write_table(ROWS, path)

    def names(mysql: str) -> list[str]:
        return run_query(
            translate(mysql, dataset_names=[DATASET_ID]),
            view_sql=f"SELECT * FROM read_parquet(['{path}'])",
            files=[str(path)],
            limits=QueryLimits(timeout_seconds=10, max_rows=100),
        ).column_names

    return names


@pytest.mark.parametrize(
    ("mysql", "expected"),
    [
        ("SELECT count(*) FROM table", ["count(*)"]),
        ("SELECT COUNT(*) FROM table", ["COUNT(*)"]),
        ("SELECT COUNT( * ), Sum(amount) FROM table", ["COUNT( * )", "Sum(amount)"]),
        ("SELECT amount+1, amount * 2 FROM table", ["amount+1", "amount * 2"]),
        ("SELECT 1, -5, 2.50 FROM table", ["1", "-5", "2.50"]),
        ("SELECT 'x', 'it''s', 'say \"hi\"' FROM table", ["x", "it's", 'say "hi"']),
        (
            "SELECT CONCAT(name, ', ', city), IFNULL(name, '?') FROM table",
            ["CONCAT(name, ', ', city)", "IFNULL(name, '?')"],
        ),
        ("SELECT CASE WHEN amount > 10 THEN 'big' END FROM table", ["CASE WHEN amount > 10 THEN 'big' END"]),
        ("SELECT count(*)\n  , sum( amount )\nFROM table", ["count(*)", "sum( amount )"]),
        ("SELECT DISTINCT upper(city) FROM table", ["upper(city)"]),
        ("SELECT (SELECT max(amount) FROM table) FROM table LIMIT 1", ["(SELECT max(amount) FROM table)"]),
        ("SELECT (SELECT 1), (SELECT 2) + 1", ["(SELECT 1)", "(SELECT 2) + 1"]),
    ],
)
def test_an_unaliased_expression_is_named_by_its_text_as_written(names, mysql, expected):
    assert names(mysql) == expected


def test_plain_columns_stars_and_aliases_keep_their_names(names):
    assert names("SELECT t.amount, `name`, city AS town, amount total FROM table t") == [
        "amount",
        "name",
        "town",
        "total",
    ]
    assert names("SELECT * FROM table") == ["name", "city", "sold", "amount"]


def test_names_pass_through_derived_tables_ctes_and_set_operations(names):
    assert names("SELECT * FROM (SELECT count(*) FROM table) x") == ["count(*)"]
    assert names("WITH c AS (SELECT amount*2 FROM table) SELECT * FROM c") == ["amount*2"]
    assert names("SELECT amount+1 FROM table UNION ALL SELECT amount-1 FROM table") == ["amount+1"]
    assert names("(SELECT 1) UNION (SELECT 2)") == ["1"]


def test_queries_inside_expressions_are_not_renamed():
    assert duckdb_sql("SELECT a FROM table WHERE a IN (SELECT a+1 FROM table)") == (
        'SELECT a FROM "dataset" AS "table" WHERE a IN (SELECT a + 1 FROM "dataset" AS "table")'
    )


def test_two_items_of_the_same_text_are_both_named_by_it():
    assert duckdb_sql("SELECT count(*), count(*) FROM table") == (
        'SELECT COUNT(*) AS "count(*)", COUNT(*) AS "count(*)" FROM "dataset" AS "table"'
    )


# --- what is refused ----------------------------------------------------------------------------


def test_more_than_one_statement_is_refused():
    assert refusal("SELECT * FROM table; SELECT 1") == "the query must be one statement; found 2"
    assert "one statement" in refusal("SELECT 1; DROP TABLE table")


@pytest.mark.parametrize("sql", ["", "   ", ";", "-- just a comment"])
def test_an_empty_query_is_refused(sql):
    assert refusal(sql) == "the query is empty"


def test_a_syntax_error_carries_the_parsers_message_and_position_but_no_traceback():
    message = refusal("SELECT * FROM table WHERE (a = 1")
    assert message.startswith("could not parse the query: ")
    assert "line 1, column" in message
    assert "Traceback" not in message and "\x1b" not in message


def test_an_unterminated_string_is_a_clean_error():
    assert refusal("SELECT 'abc FROM table").startswith("could not parse the query")


def test_absurd_nesting_is_a_clean_error():
    assert refusal("SELECT " + "(" * 5000 + "1" + ")" * 5000) == "the query is nested too deeply"


@pytest.mark.parametrize(
    "sql",
    [
        "INSERT INTO table VALUES (1)",
        "INSERT INTO table SELECT * FROM table",
        "REPLACE INTO table VALUES (1)",
        "UPDATE table SET a = 1",
        "DELETE FROM table",
        "CREATE TABLE x AS SELECT * FROM table",
        "CREATE VIEW v AS SELECT 1",
        "DROP TABLE table",
        "ALTER TABLE table ADD COLUMN c INT",
        "ATTACH '/tmp/x.db'",
        "DETACH x",
        "COPY table TO '/tmp/x.csv'",
        "INSTALL httpfs",
        "LOAD httpfs",
        "PRAGMA version",
        "SET enable_external_access = true",
        "SET @x = 1",
        "CALL f()",
        "USE other",
        "SHOW TABLES",
        "CHECKPOINT",
        "SELECT * INTO t2 FROM table",
        "WITH c AS (SELECT 1) INSERT INTO table SELECT * FROM c",
        "EXPLAIN SELECT * FROM table",
    ],
)
def test_statements_that_are_not_read_only_queries_are_refused(sql):
    assert refusal(sql).startswith("only read-only queries are allowed")


@pytest.mark.parametrize(
    "sql",
    ["EXPORT DATABASE '/tmp/x'", "IMPORT DATABASE '/tmp/x'", "TRUNCATE table", "DESCRIBE table", "VACUUM"],
)
def test_statements_mysql_does_not_know_are_refused_as_syntax_errors(sql):
    with pytest.raises(InvalidSql):
        duckdb_sql(sql)


@pytest.mark.parametrize(
    ("sql", "name"),
    [
        ("SELECT * FROM other", "other"),
        ("SELECT * FROM table JOIN table2 ON 1 = 1", "table2"),
        ("SELECT * FROM table WHERE a IN (SELECT a FROM secrets)", "secrets"),
        ("SELECT * FROM dataset", "dataset"),
        ("SELECT * FROM sqlite_master", "sqlite_master"),
        ("SELECT * FROM '/etc/passwd'", "/etc/passwd"),
        ("SELECT * FROM `6f1c2e3a-0000-4000-8000-000000000000`", "6f1c2e3a-0000-4000-8000-000000000000"),
    ],
)
def test_any_other_table_is_unknown(sql, name):
    assert refusal(sql) == f'unknown table "{name}": a query may only read its dataset'


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT * FROM information_schema.tables",
        "SELECT * FROM main.table",
        "SELECT * FROM `memory`.`main`.`table`",
        "SELECT * FROM pg_catalog.pg_class",
        f"SELECT * FROM db.`{DATASET_ID}`",
    ],
)
def test_qualified_table_names_are_unknown(sql):
    assert refusal(sql).startswith("unknown table ")


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT * FROM range(10)",
        "SELECT * FROM generate_series(1, 10)",
        "SELECT * FROM unnest([1, 2])",
        "SELECT * FROM json_each('[1]')",
        "SELECT * FROM table t, LATERAL generate_series(1, t.a)",
        "SELECT * FROM JSON_TABLE('[1]', '$[*]' COLUMNS (a INT PATH '$')) AS j",
    ],
)
def test_table_functions_are_refused(sql):
    assert "are not allowed" in refusal(sql)


@pytest.mark.parametrize(
    ("sql", "name"),
    [
        ("SELECT * FROM read_csv('/etc/passwd')", "read_csv"),
        ("SELECT * FROM read_parquet('/data/other/x.parquet')", "read_parquet"),
        ("SELECT * FROM read_csv_auto('/etc/passwd')", "read_csv_auto"),
        ("SELECT read_text('/etc/passwd')", "read_text"),
        ("SELECT length(READ_BLOB('/etc/passwd'))", "read_blob"),
        ("SELECT current_setting('allowed_paths')", "current_setting"),
        ("SELECT getenv('HOME')", "getenv"),
        ("SELECT * FROM duckdb_settings()", "duckdb_settings"),
        ("SELECT a FROM table WHERE a IN (SELECT 1 FROM duckdb_views())", "duckdb_views"),
        ("SELECT * FROM pragma_database_list()", "pragma_database_list"),
        ("SELECT * FROM sniff_csv('/etc/passwd')", "sniff_csv"),
        ("SELECT * FROM parquet_metadata('/x.parquet')", "parquet_metadata"),
        ("SELECT * FROM query('SELECT 1')", "query"),
        ("SELECT * FROM query_table('t')", "query_table"),
        ("SELECT load_file('/etc/passwd')", "load_file"),
        ("SELECT * FROM table, LATERAL read_csv('/x')", "read_csv"),
    ],
)
def test_functions_that_reach_outside_the_dataset_are_refused_anywhere(sql, name):
    assert refusal(sql) == f"the function {name}() is not allowed in a query"


@pytest.mark.parametrize("name", ["table", "TABLE", "dataset", DATASET_ID])
def test_a_cte_may_not_take_the_datasets_name(name):
    assert "may not define" in refusal(f"WITH `{name}` AS (SELECT 1 AS a) SELECT * FROM `{name}`")


def test_mysql_features_duckdb_lacks_are_refused_not_dropped():
    assert "does not support" in refusal("SELECT * FROM table FOR UPDATE")


def test_names_outside_dataset_names_are_not_the_dataset():
    with pytest.raises(InvalidSql, match="unknown table"):
        translate(f"SELECT * FROM `{DATASET_ID}`", dataset_names=[])


@pytest.mark.parametrize("sql", ["SELECT * FROM glob('/*')", "DESCRIBE table"])
def test_parse_errors_describe_the_query_not_sqlglot_internals(sql: str) -> None:
    with pytest.raises(InvalidSql) as caught:
        translate(sql, dataset_names=[])
    assert "<class" not in caught.value.message and "Token" not in caught.value.message
    assert "line 1" in caught.value.message


# --- queries over several datasets (dataset-sql) -------------------------------------------------

OTHER_ID = "0b1e2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"


def test_table_names_lists_each_table_once_lower_cased_without_the_ctes():
    sql = (
        f'WITH recent AS (SELECT * FROM `{DATASET_ID.upper()}`) SELECT * FROM recent JOIN "{OTHER_ID}" o '
        f"USING (id) WHERE id IN (SELECT id FROM `{DATASET_ID}`) AND id IN (SELECT id FROM orders)"
    )
    assert sorted(table_names(sql)) == sorted([DATASET_ID, OTHER_ID, "orders"])


def test_table_names_of_a_query_reading_no_table_is_empty():
    assert table_names("SELECT 1 AS one") == []


@pytest.mark.parametrize(
    ("sql", "says"),
    [
        ("SELECT * FROM read_csv('/etc/passwd')", "read_csv() is not allowed"),
        (f"DELETE FROM `{DATASET_ID}`", "only read-only queries"),
        (f"SELECT * FROM db.`{DATASET_ID}`", "name each dataset by its id alone"),
        ("SELEC 1", "could not parse the query"),
    ],
)
def test_table_names_refuses_what_translation_would(sql, says):
    with pytest.raises(InvalidSql, match=re.escape(says)):
        table_names(sql)


def test_translate_over_points_each_dataset_at_its_own_view_and_keeps_aliases():
    sql = f'SELECT a.x, `{OTHER_ID}`.y FROM "{DATASET_ID}" a JOIN `{OTHER_ID.upper()}` ON a.id = `{OTHER_ID}`.id'
    translated = translate_over(sql, views={DATASET_ID: "view_a", OTHER_ID: "view_b"})
    assert f'FROM "view_a" AS a JOIN "view_b" AS "{OTHER_ID.upper()}"' in translated


def test_translate_over_refuses_a_table_it_was_not_given():
    with pytest.raises(
        InvalidSql, match='unknown table "table": a query may only read the datasets it names'
    ):
        translate_over("SELECT * FROM table", views={DATASET_ID: DATASET_ID})


def test_translate_over_refuses_a_cte_shadowing_a_dataset():
    with pytest.raises(InvalidSql, match="may not define"):
        translate_over(
            f"WITH `{DATASET_ID}` AS (SELECT 1) SELECT * FROM `{DATASET_ID}`", views={DATASET_ID: "v"}
        )
