"""PDP policies as a DuckDB predicate: each operator, ``not``, every type, NULLs, hostile names and values.

Every predicate is run the way the sandbox runs it (``SELECT ... WHERE (<predicate>)``) over a small
in-memory table, and the test checks which rows come back.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from datagrove.domain import Policy, PolicyFilter, PolicyOperator, PolicyType
from datagrove.errors import BadRequest
from datagrove.tables.policy_sql import canonical_value, check_filters, row_predicate
from datagrove.tables.sql_names import quote_identifier
from datagrove.tables.types import Column, ColumnType

HOSTILE = "x' OR '1'='1"
QUOTED_NAME = 'we"ird \'col" OR true OR "'

COLUMNS = (
    Column("id", ColumnType.LONG),
    Column("n", ColumnType.LONG),
    Column("name", ColumnType.STRING),
    Column("amount", ColumnType.DOUBLE),
    Column("day", ColumnType.DATE),
    Column("at", ColumnType.DATETIME),
    Column("price", ColumnType.DECIMAL),
    Column("flag", ColumnType.BOOLEAN),
    Column(QUOTED_NAME, ColumnType.STRING),
)
ROWS = [
    (1, 10, "alice", 1.5, date(2024, 1, 1), datetime(2024, 1, 1, 10), Decimal("1.25"), True, HOSTILE),
    (2, 20, "bob", 2.5, date(2024, 2, 1), datetime(2024, 2, 1), Decimal("2.5"), False, "plain"),
    (
        3,
        30,
        "carol%",
        -3.0,
        date(2024, 3, 1),
        datetime(2024, 3, 1, 23, 59, 59, 500000),
        Decimal("3.75"),
        True,
        "a_b",
    ),
    (4, None, None, None, None, None, None, None, None),
    (5, 40, "dave_x", 100.0, date(2023, 12, 31), datetime(2023, 12, 31, 12), Decimal(100), False, "%"),
]
ALL = {1, 2, 3, 4, 5}
NOT_NULL = {1, 2, 3, 5}


@pytest.fixture(scope="module")
def con():
    con = duckdb.connect()
    defs = ", ".join(f"{quote_identifier(c.name)} {c.type.duckdb}" for c in COLUMNS)
    con.execute(f"CREATE TABLE rows ({defs})")
    con.executemany(f"INSERT INTO rows VALUES ({', '.join('?' * len(COLUMNS))})", ROWS)
    yield con
    con.close()


def policy(*filters: PolicyFilter, type: PolicyType = PolicyType.USER) -> Policy:
    now = datetime.now(UTC)
    return Policy(1, "ds", "p", type, tuple(filters), (1,), (), (), now, now)


def f(column: str, operator: str, *values: str, negate: bool = False) -> PolicyFilter:
    return PolicyFilter(column, PolicyOperator(operator), tuple(values), negate)


def visible(con, *policies: Policy, columns=COLUMNS) -> set[int]:
    predicate = row_predicate(columns, list(policies))
    return {row[0] for row in con.execute(f"SELECT id FROM rows WHERE ({predicate})").fetchall()}


CASES = [
    # EQUALS / NOT_EQUALS, every type
    ("name", "EQUALS", ["alice", "bob"], {1, 2}),
    ("name", "NOT_EQUALS", ["alice", "bob"], {3, 5}),
    ("n", "EQUALS", ["30"], {3}),
    ("n", "EQUALS", ["30.0", "+40"], {3, 5}),
    ("amount", "EQUALS", ["1.5", "1e2"], {1, 5}),
    ("day", "EQUALS", ["2024-02-01"], {2}),
    ("at", "EQUALS", ["2024-01-01T10:00:00"], {1}),
    ("at", "EQUALS", ["2024-01-01 12:00:00+02:00"], {1}),  # converted to UTC
    ("at", "EQUALS", ["2024-02-01"], {2}),  # a date alone is midnight
    ("price", "EQUALS", ["1.25", "100"], {1, 5}),
    ("flag", "EQUALS", ["TRUE"], {1, 3}),
    ("flag", "NOT_EQUALS", ["true"], {2, 5}),
    # comparisons
    ("n", "GREATER_THAN", ["30"], {5}),
    ("n", "GREATER_THAN_EQUAL", ["30"], {3, 5}),
    ("n", "LESS_THAN", ["30"], {1, 2}),
    ("n", "LESS_THAN_EQUAL", ["30"], {1, 2, 3}),
    ("amount", "GREATER_THAN", ["2"], {2, 5}),
    ("amount", "LESS_THAN", ["0"], {3}),
    ("day", "LESS_THAN", ["2024-01-01"], {5}),
    ("at", "GREATER_THAN", ["2024-02-01"], {3}),
    ("at", "GREATER_THAN_EQUAL", ["2024-02-01 00:00:00"], {2, 3}),
    ("price", "LESS_THAN_EQUAL", ["2.50"], {1, 2}),
    ("name", "GREATER_THAN", ["bob"], {3, 5}),  # text compares as text
    ("n", "BETWEEN", ["20", "30"], {2, 3}),  # both ends included
    ("day", "BETWEEN", ["2024-01-01", "2024-02-15"], {1, 2}),
    ("at", "BETWEEN", ["2024-03-01 23:59:59.5", "2024-12-31"], {3}),
    ("amount", "BETWEEN", ["5", "1"], set()),  # low above high: nothing
    # text operators
    ("name", "LIKE", ["%o%"], {2, 3}),
    ("name", "LIKE", ["_ob"], {2}),
    ("name", "LIKE", ["a%", "d%"], {1, 5}),
    ("name", "BEGINS_WITH", ["carol%"], {3}),
    ("name", "BEGINS_WITH", ["car%"], set()),  # % is literal, not a wildcard
    ("name", "ENDS_WITH", ["_x"], {5}),
    ("name", "CONTAINS", ["_"], {5}),  # _ is literal
    ("name", "CONTAINS", ["%"], {3}),
    ("name", "CONTAINS", ["li", "ob"], {1, 2}),
    ("at", "CONTAINS", ["23:59"], {3}),  # text of a DATETIME
    ("day", "BEGINS_WITH", ["2024-0"], {1, 2, 3}),
    ("n", "ENDS_WITH", ["0"], {1, 2, 3, 5}),
    ("n", "BEGINS_WITH", ["4"], {5}),
    ("price", "BEGINS_WITH", ["1.25"], {1}),
    ("flag", "LIKE", ["t%"], {1, 3}),
]


@pytest.mark.parametrize(("column", "operator", "values", "expected"), CASES)
def test_each_operator_keeps_the_rows_it_matches(con, column, operator, values, expected):
    assert visible(con, policy(f(column, operator, *values))) == expected


@pytest.mark.parametrize(("column", "operator", "values", "expected"), CASES)
def test_not_keeps_the_other_rows_but_never_a_null_one(con, column, operator, values, expected):
    assert visible(con, policy(f(column, operator, *values, negate=True))) == NOT_NULL - expected


def test_null_never_matches_a_filter_whatever_its_operator(con):
    for column, operator, values, _ in CASES:
        for negate in (False, True):
            assert 4 not in visible(con, policy(f(column, operator, *values, negate=negate)))


def test_the_filters_of_one_policy_must_all_match(con):
    both = policy(f("id", "GREATER_THAN", "1"), f("flag", "EQUALS", "true"))
    assert visible(con, both) == {3}


def test_a_row_any_policy_allows_is_visible(con):
    assert visible(con, policy(f("id", "EQUALS", "1")), policy(f("name", "EQUALS", "bob"))) == {1, 2}


def test_no_policy_shows_no_rows(con):
    assert row_predicate(COLUMNS, []) == "false"
    assert visible(con) == set()


def test_a_policy_without_filters_shows_every_row_nulls_included(con):
    assert row_predicate(COLUMNS, [policy(f("id", "EQUALS", "1")), policy()]) == "true"
    assert visible(con, policy()) == ALL


def test_an_open_policy_shows_every_row_whatever_its_filters(con):
    assert visible(con, policy(f("id", "EQUALS", "1"), type=PolicyType.OPEN)) == ALL


def test_a_system_policy_filters_like_a_user_policy(con):
    assert visible(con, policy(f("id", "EQUALS", "2"), type=PolicyType.SYSTEM)) == {2}


def test_a_hostile_value_is_only_ever_a_value(con):
    assert visible(con, policy(f("name", "EQUALS", HOSTILE))) == set()
    assert visible(con, policy(f("name", "LIKE", HOSTILE))) == set()
    assert visible(con, policy(f("name", "CONTAINS", "' OR 1=1 --"))) == set()
    assert visible(con, policy(f(QUOTED_NAME, "EQUALS", HOSTILE))) == {1}
    assert visible(con, policy(f(QUOTED_NAME, "BEGINS_WITH", "x'"))) == {1}


def test_a_column_name_with_quotes_is_only_ever_a_name(con):
    assert visible(con, policy(f(QUOTED_NAME, "EQUALS", "plain"))) == {2}
    assert visible(con, policy(f(QUOTED_NAME, "NOT_EQUALS", "plain"))) == {1, 3, 5}


def test_a_filter_on_a_column_the_schema_no_longer_has_matches_nothing_even_negated(con):
    for negate in (False, True):
        assert visible(con, policy(f('name" OR true OR "', "EQUALS", "x", negate=negate))) == set()
        assert visible(con, policy(f("gone", "NOT_EQUALS", "x", negate=negate))) == set()


def test_a_value_that_no_longer_converts_after_a_type_change_matches_nothing_even_negated(con):
    retyped = tuple(Column("id", ColumnType.DATE) if c.name == "id" else c for c in COLUMNS)
    for negate in (False, True):
        assert row_predicate(retyped, [policy(f("id", "EQUALS", "3", negate=negate))]) == "false"
    # the other policies still apply
    assert visible(
        con, policy(f("id", "EQUALS", "3")), policy(f("name", "EQUALS", "bob")), columns=retyped
    ) == {2}


def test_a_filter_with_the_wrong_number_of_values_matches_nothing(con):
    assert visible(con, policy(f("id", "BETWEEN", "1"))) == set()
    assert visible(con, policy(f("id", "EQUALS"))) == set()


def test_the_predicate_has_no_trace_of_user_text_outside_literals_and_identifiers():
    predicate = row_predicate(COLUMNS, [policy(f(QUOTED_NAME, "EQUALS", HOSTILE))])
    assert predicate == (
        '("we""ird \'col"" OR true OR """ IS NOT NULL AND '
        "\"we\"\"ird 'col\"\" OR true OR \"\"\" IN (CAST('x'' OR ''1''=''1' AS VARCHAR)))"
    )


# --- validation ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("item", "message"),
    [
        (f("nope", "EQUALS", "1"), "no column 'nope'"),
        (f("Name", "EQUALS", "1"), "no column 'Name'"),  # names are exact
        (f("id", "BETWEEN", "1"), "BETWEEN needs exactly 2 values"),
        (f("id", "BETWEEN", "1", "2", "3"), "BETWEEN needs exactly 2 values"),
        (f("id", "GREATER_THAN", "1", "2"), "GREATER_THAN needs exactly 1 value"),
        (f("id", "LESS_THAN_EQUAL"), "LESS_THAN_EQUAL needs exactly 1 value"),
        (f("id", "EQUALS"), "EQUALS needs at least 1 value"),
        (f("name", "NOT_EQUALS"), "NOT_EQUALS needs at least 1 value"),
        (f("name", "CONTAINS"), "CONTAINS needs at least 1 value"),
        (f("id", "EQUALS", "1", "x"), "value 'x' is not a LONG"),
        (f("id", "EQUALS", "1.5"), "value '1.5' is not a LONG"),
        (f("id", "EQUALS", "99999999999999999999"), "is not a LONG"),
        (f("amount", "GREATER_THAN", "abc"), "value 'abc' is not a DOUBLE"),
        (f("price", "EQUALS", "NaN"), "is not a DECIMAL"),
        (f("price", "EQUALS", "1" * 29), "is not a DECIMAL"),
        (f("day", "EQUALS", "2024-02-30"), "value '2024-02-30' is not a DATE"),
        (f("day", "EQUALS", "01/02/2024"), "is not a DATE"),
        (f("at", "EQUALS", "2024-01-01 25:00"), "is not a DATETIME"),
        (f("at", "EQUALS", "yesterday"), "is not a DATETIME"),
        (f("flag", "EQUALS", "maybe"), "value 'maybe' is not a BOOLEAN"),
    ],
)
def test_check_filters_names_the_problem(item, message):
    with pytest.raises(BadRequest, match=message.replace("(", r"\(")):
        check_filters(COLUMNS, [f("id", "EQUALS", "1"), item])


def test_check_filters_accepts_text_operators_on_any_type_with_any_text():
    check_filters(
        COLUMNS, [f("id", "CONTAINS", "x%"), f("at", "LIKE", "2024-__-01%"), f("flag", "ENDS_WITH", "")]
    )


@pytest.mark.parametrize(
    ("column_type", "text", "canonical"),
    [
        (ColumnType.LONG, "-42", "-42"),
        (ColumnType.LONG, "7.00", "7"),
        (ColumnType.DOUBLE, "1.0E20", "1e+20"),
        (ColumnType.DOUBLE, "-Infinity", "-inf"),
        (ColumnType.DECIMAL, "1.123456789051", "1.1234567891"),
        (ColumnType.DATE, "2024-02-29", "2024-02-29"),
        (ColumnType.DATETIME, "2024-01-01", "2024-01-01 00:00:00"),
        (ColumnType.DATETIME, "2024-01-01T10:11", "2024-01-01 10:11:00"),
        (ColumnType.DATETIME, "2024-01-01T10:11:12.1234567Z", "2024-01-01 10:11:12.123456"),
        (ColumnType.DATETIME, "2024-01-01 00:30:00-0100", "2024-01-01 01:30:00"),
        (ColumnType.BOOLEAN, "Yes", "true"),
        (ColumnType.BOOLEAN, "0", "false"),
        (ColumnType.STRING, " as is ", " as is "),
    ],
)
def test_canonical_values(column_type, text, canonical):
    assert canonical_value(column_type, text) == canonical


# --- properties ---------------------------------------------------------------------------------

TYPED_TEXT = st.one_of(
    st.text(max_size=30),
    st.from_regex(r"[+-]?[0-9]{1,25}(\.[0-9]{0,12})?([eE][+-]?[0-9]{1,3})?", fullmatch=True),
    st.datetimes().map(lambda d: d.isoformat(sep=" ")),
    st.dates().map(str),
)


@settings(max_examples=300, deadline=None)
@given(text=TYPED_TEXT, column_type=st.sampled_from(list(ColumnType)))
def test_every_accepted_value_casts_in_duckdb(text, column_type):
    try:
        canonical = canonical_value(column_type, text)
    except ValueError:
        return
    duckdb.sql("SELECT CAST(? AS " + column_type.duckdb + ")", params=[canonical]).fetchall()


@settings(max_examples=200, deadline=None)
@given(
    stored=st.text(max_size=20),
    value=st.text(max_size=20),
    operator=st.sampled_from(["EQUALS", "NOT_EQUALS", "LIKE", "BEGINS_WITH", "CONTAINS", "GREATER_THAN"]),
)
def test_any_text_value_is_a_literal_and_the_predicate_always_runs(stored, value, operator):
    name = "c" + value  # the value doubles as (part of) the column's name
    columns = (Column("id", ColumnType.LONG), Column(name, ColumnType.STRING))
    con = duckdb.connect()
    con.execute(f"CREATE TABLE rows (id BIGINT, {quote_identifier(name)} VARCHAR)")
    con.execute("INSERT INTO rows VALUES (1, ?), (2, NULL)", [stored])
    found = visible(con, policy(f(name, operator, value)), columns=columns)
    expected = {
        "EQUALS": stored == value,
        "NOT_EQUALS": stored != value,
        "BEGINS_WITH": stored.startswith(value),
        "CONTAINS": value in stored,
        "GREATER_THAN": stored > value,
    }.get(operator)
    if expected is not None:
        assert found == ({1} if expected else set())
    else:
        assert found <= {1}
