"""PDP policies as one DuckDB predicate over a dataset's columns.

``row_predicate(columns, policies)`` is the condition the sandbox puts inside its view of the
dataset (``WHERE (<predicate>)``), so no user SQL can see a row it does not allow:

* A row is visible when **any** policy allows it; a policy allows a row when **all** its filters
  match. A policy of type ``open`` or without filters allows every row; no policy at all allows none
  (``false``).
* A filter compares the column with the filter's values, each turned into a literal of the
  column's type (``CAST('<value>' AS <type>)``): EQUALS (any of the values), NOT_EQUALS (none of
  them), GREATER_THAN, LESS_THAN, GREATER_THAN_EQUAL, LESS_THAN_EQUAL (one value), BETWEEN (two,
  both ends included).
* LIKE, BEGINS_WITH, ENDS_WITH and CONTAINS work on the column's text (``CAST(col AS VARCHAR)``;
  e.g. DATETIME ``2024-01-02 03:04:05``, DECIMAL ``1.5000000000``) and match when any value
  matches. LIKE values are SQL patterns (``%`` any run, ``_`` one character, no escape character);
  the other three take their values literally, so ``%`` and ``_`` mean themselves.
* ``not`` negates a filter. **NULL never matches a filter**, negated or not: a row whose column is
  NULL is hidden by every filter on that column (fail closed: a policy shows only rows it
  positively covers; an ``open`` or filterless policy is the way to show NULL rows).
* A filter that no longer fits the schema (its column was removed, or a value no longer converts
  after a type change) matches nothing, even when negated, instead of breaking the query.

Values and column names reach the SQL only through ``quote_literal`` and ``quote_identifier``;
typed values are first rewritten to a canonical text (``canonical_value``) that DuckDB's cast
accepts, so a predicate never fails at query time.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation, localcontext

from datagrove.domain import Policy, PolicyFilter, PolicyOperator, PolicyType
from datagrove.errors import BadRequest
from datagrove.tables.sql_names import quote_identifier, quote_literal
from datagrove.tables.types import DECIMAL_PRECISION, DECIMAL_SCALE, Column, ColumnType

ALLOW_ALL = "true"
ALLOW_NONE = "false"

_COMPARISONS = {
    PolicyOperator.GREATER_THAN: ">",
    PolicyOperator.LESS_THAN: "<",
    PolicyOperator.GREATER_THAN_EQUAL: ">=",
    PolicyOperator.LESS_THAN_EQUAL: "<=",
}
_TEXT_FUNCTIONS = {
    PolicyOperator.BEGINS_WITH: "starts_with",
    PolicyOperator.ENDS_WITH: "ends_with",
    PolicyOperator.CONTAINS: "contains",
}
_TEXT_OPERATORS = frozenset({PolicyOperator.LIKE, *_TEXT_FUNCTIONS})

_LONG = re.compile(r"[+-]?[0-9]+(\.0+)?")
_DATE = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})")
_DATETIME = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})"
    r"(?:[T ]([0-9]{2}):([0-9]{2})(?::([0-9]{2})(?:\.([0-9]+))?)?)?"
    r"(Z|[+-][0-9]{2}(?::?[0-9]{2})?)?"
)
_TRUE = frozenset({"true", "t", "1", "yes", "y"})
_FALSE = frozenset({"false", "f", "0", "no", "n"})


def value_count_error(operator: PolicyOperator, count: int) -> str | None:
    """Why ``count`` values do not suit ``operator``, or None when they do."""
    if operator is PolicyOperator.BETWEEN:
        return None if count == 2 else f"BETWEEN needs exactly 2 values (low, high), not {count}"
    if operator in _COMPARISONS:
        return None if count == 1 else f"{operator.value} needs exactly 1 value, not {count}"
    return None if count >= 1 else f"{operator.value} needs at least 1 value"


def canonical_value(column_type: ColumnType, text: str) -> str:
    """``text`` as a value of ``column_type``, in a form DuckDB's CAST accepts; ValueError if it is not
    one. Accepted: LONG ``-?[0-9]+`` (and ``1.0``); DOUBLE Python/Java float syntax; DECIMAL the same
    without inf/nan, at most 28 integer digits, rounded half-up to 10 places; DATE ``YYYY-MM-DD``;
    DATETIME a date, optionally ``T``/space and ``HH:MM[:SS[.fff…]]``, optionally ``Z``/``±HH[:MM]``
    (converted to UTC); BOOLEAN true/false, t/f, 1/0, yes/no, y/n; STRING anything."""
    if column_type is ColumnType.STRING:
        return text
    if column_type is ColumnType.LONG:
        if not _LONG.fullmatch(text):
            raise ValueError("not a whole number")
        number = int(text.split(".")[0])
        if not -(2**63) <= number < 2**63:
            raise ValueError("out of the LONG range")
        return str(number)
    if column_type is ColumnType.DOUBLE:
        return repr(float(text))
    if column_type is ColumnType.DECIMAL:
        return _decimal(text)
    if column_type is ColumnType.DATE:
        if not _DATE.fullmatch(text):
            raise ValueError("not a YYYY-MM-DD date")
        return date.fromisoformat(text).isoformat()
    if column_type is ColumnType.DATETIME:
        return _datetime(text)
    if column_type is ColumnType.BOOLEAN:
        lowered = text.strip().lower()
        if lowered in _TRUE:
            return "true"
        if lowered in _FALSE:
            return "false"
        raise ValueError("not true or false")
    raise ValueError(f"unsupported column type {column_type}")


def check_filters(columns: Sequence[Column], filters: Sequence[PolicyFilter]) -> None:
    """Raise BadRequest naming the first filter whose column, number of values or values do not fit."""
    by_name = {c.name: c for c in columns}
    for index, item in enumerate(filters):
        where = f"filter {index + 1}"
        column = by_name.get(item.column)
        if column is None:
            known = ", ".join(repr(c.name) for c in columns[:20]) or "none"
            known += ", …" if len(columns) > 20 else ""
            raise BadRequest(f"{where}: the dataset has no column {item.column!r} (columns: {known})")
        count_error = value_count_error(item.operator, len(item.values))
        if count_error:
            raise BadRequest(f"{where} on {item.column!r}: {count_error}")
        if item.operator in _TEXT_OPERATORS:
            continue
        for value in item.values:
            try:
                canonical_value(column.type, value)
            except ValueError as exc:
                raise BadRequest(
                    f"{where}: value {value!r} is not a {column.type.value} for column {item.column!r} ({exc})"
                ) from None


def row_predicate(columns: Sequence[Column], policies: Sequence[Policy]) -> str:
    """The predicate allowing the rows that any of ``policies`` allows (``false`` for none)."""
    by_name = {c.name: c for c in columns}
    parts: list[str] = []
    for policy in policies:
        sql = _policy_sql(by_name, policy)
        if sql == ALLOW_ALL:
            return ALLOW_ALL
        if sql != ALLOW_NONE and sql not in parts:
            parts.append(sql)
    if not parts:
        return ALLOW_NONE
    return parts[0] if len(parts) == 1 else " OR ".join(parts)


def _policy_sql(by_name: dict[str, Column], policy: Policy) -> str:
    if policy.type is PolicyType.OPEN or not policy.filters:
        return ALLOW_ALL
    conditions = [_filter_sql(by_name.get(item.column), item) for item in policy.filters]
    if ALLOW_NONE in conditions:
        return ALLOW_NONE
    return conditions[0] if len(conditions) == 1 else "(" + " AND ".join(conditions) + ")"


def _filter_sql(column: Column | None, item: PolicyFilter) -> str:
    if column is None or value_count_error(item.operator, len(item.values)):
        return ALLOW_NONE
    name = quote_identifier(column.name)
    operator = item.operator
    if operator in _TEXT_OPERATORS:
        text = name if column.type is ColumnType.STRING else f"CAST({name} AS VARCHAR)"
        if operator is PolicyOperator.LIKE:
            tests = [f"{text} LIKE {quote_literal(v)}" for v in item.values]
        else:
            function = _TEXT_FUNCTIONS[operator]
            tests = [f"{function}({text}, {quote_literal(v)})" for v in item.values]
        condition = tests[0] if len(tests) == 1 else "(" + " OR ".join(tests) + ")"
    else:
        try:
            literals = [_typed_literal(column.type, v) for v in item.values]
        except ValueError:
            return ALLOW_NONE
        if operator in (PolicyOperator.EQUALS, PolicyOperator.NOT_EQUALS):
            condition = f"{name} IN ({', '.join(literals)})"
        elif operator is PolicyOperator.BETWEEN:
            condition = f"{name} BETWEEN {literals[0]} AND {literals[1]}"
        else:
            condition = f"{name} {_COMPARISONS[operator]} {literals[0]}"
    # The column is not NULL and every literal is a typed constant, so ``condition`` is never NULL
    # and its negation is exact.
    negated = item.negate != (operator is PolicyOperator.NOT_EQUALS)
    return f"({name} IS NOT NULL AND {f'NOT ({condition})' if negated else condition})"


def _typed_literal(column_type: ColumnType, text: str) -> str:
    return f"CAST({quote_literal(canonical_value(column_type, text))} AS {column_type.duckdb})"


def _decimal(text: str) -> str:
    try:
        number = Decimal(text.strip())
    except InvalidOperation:
        raise ValueError("not a decimal number") from None
    if not number.is_finite():
        raise ValueError("not a finite number")
    with localcontext() as context:
        context.prec = DECIMAL_PRECISION + 2
        rounded = (
            number
            if number.adjusted() >= DECIMAL_PRECISION - DECIMAL_SCALE
            else number.quantize(Decimal(1).scaleb(-DECIMAL_SCALE), rounding=ROUND_HALF_UP)
        )
    if rounded.adjusted() >= DECIMAL_PRECISION - DECIMAL_SCALE:
        raise ValueError(f"more than {DECIMAL_PRECISION - DECIMAL_SCALE} integer digits")
    return format(rounded, "f")


def _datetime(text: str) -> str:
    match = _DATETIME.fullmatch(text)
    if not match:
        raise ValueError("not a YYYY-MM-DD[ HH:MM[:SS[.fff]]] date and time")
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    micros = int((fraction or "0")[:6].ljust(6, "0"))
    value = datetime(
        int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(second or 0), micros
    )
    if zone and zone != "Z":
        digits = zone[1:].replace(":", "")
        offset = timedelta(hours=int(digits[:2]), minutes=int(digits[2:] or 0))
        if offset >= timedelta(hours=24):
            raise ValueError("the offset is out of range")
        value = value.replace(tzinfo=timezone(-offset if zone[0] == "-" else offset))
        try:
            value = value.astimezone(UTC).replace(tzinfo=None)
        except OverflowError:
            raise ValueError("out of range") from None
    return value.isoformat(sep=" ")
