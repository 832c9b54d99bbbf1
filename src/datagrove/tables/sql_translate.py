"""Translation of a user's query from Domo's SQL (MySQL flavour) into DuckDB SQL over sandbox views.

Domo's query API takes MySQL: back-quoted identifiers, MySQL functions, and the dataset named
``table`` (any case) or by its id. ``translate`` returns one read-only DuckDB statement in which
every reference to the dataset reads the sandbox's view ``"dataset"`` (``VIEW_NAME``), or raises
``InvalidSql`` saying what is not allowed. A query over several datasets (a SQL dataflow) names
each by its id: ``table_names`` lists them, and ``translate_over`` points each at its own view.

The checks here are defence in depth and the source of friendly errors. The boundary that holds
even if they were bypassed is the locked DuckDB of ``datagrove.tables.sandbox``.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

import sqlglot
from sqlglot import exp
from sqlglot.errors import ErrorLevel, ParseError, SqlglotError

from datagrove.errors import InvalidSql
from datagrove.tables.mysql_names import name_like_mysql

#: The view that the sandbox creates over the dataset's files; translated SQL reads only this.
VIEW_NAME = "dataset"

# DuckDB functions that reach files, settings, the catalog or dynamic SQL. Table functions are all
# refused anyway; this list is for the ones that also work as scalars or inside LATERAL.
_DENIED_FUNCTION_PREFIXES = (
    "read_",
    "glob",
    "getenv",
    "current_setting",
    "duckdb_",
    "pragma_",
    "sniff_csv",
    "parquet_",
    "query",
    "load",
    "install",
    "checkpoint",
    "export",
)

_READ_ONLY_KINDS = "SELECT, WITH … SELECT, UNION, INTERSECT, EXCEPT and VALUES"

#: Why a query over several datasets (see ``table_names``) that names none cannot run.
NO_DATASET = 'the query reads no dataset; name each by its id, e.g. FROM "<dataset id>"'


def translate(sql: str, *, dataset_names: Collection[str]) -> str:
    """Return the DuckDB form of one read-only MySQL query over a single dataset.

    The dataset may be named ``table`` (any case, back-quoted or not) or any of ``dataset_names``
    (compared case-insensitively); each such reference becomes ``"dataset"`` and keeps the user's
    alias, or gets its original name as alias so that qualified columns (``table.col``) still
    resolve. The query may read nothing else: other tables, schema-qualified names, table
    functions, file literals and a deny list of DuckDB functions are refused, as is anything but
    exactly one SELECT/UNION/INTERSECT/EXCEPT/WITH/VALUES statement. Raises ``InvalidSql``.

    Result columns are named as MySQL names them (``SELECT count(*)`` answers a column
    ``count(*)``): see ``datagrove.tables.mysql_names``.
    """
    views = {name: VIEW_NAME for name in ("table", *(name.lower() for name in dataset_names))}
    return _translate(sql, views, scope="its dataset")


def table_names(sql: str) -> list[str]:
    """The tables a MySQL query reads, lower-cased, each once; the names of its WITH clauses are not
    tables. Raises ``InvalidSql`` when it is not one read-only query, uses a table function or a
    refused function (the checks of ``translate``) or a schema-qualified name."""
    tree = _parse_one(sql)
    # The query's shape first: a table function or a write is refused as such, not as "no dataset".
    _require_read_only(tree, sql)
    _refuse_denied_functions(tree)
    _refuse_table_functions(tree)
    cte_names = {cte.alias_or_name.lower() for cte in tree.find_all(exp.CTE)}
    names: dict[str, None] = {}
    for table in tree.find_all(exp.Table):
        if table.args.get("db") or table.args.get("catalog"):
            raise InvalidSql(
                f'unknown table "{table.sql(dialect="mysql")}": name each dataset by its id alone'
            )
        if table.name and table.name.lower() not in cte_names:
            names[table.name.lower()] = None
    return list(names)


def translate_over(sql: str, *, views: Mapping[str, str]) -> str:
    """Return the DuckDB form of one read-only MySQL query over several datasets.

    ``views`` maps each table name the query may read (lower case, e.g. a dataset id) to the
    sandbox view that holds it; each reference reads its view and keeps the user's alias (or gets
    its name as alias). Everything else is as for ``translate``: any other table is refused.
    """
    return _translate(
        sql, {name.lower(): view for name, view in views.items()}, scope="the datasets it names"
    )


def _translate(sql: str, views: Mapping[str, str], *, scope: str) -> str:
    tree = _parse_one(sql)
    _require_read_only(tree, sql)
    _refuse_denied_functions(tree)
    _refuse_table_functions(tree)
    name_like_mysql(tree, sql)
    _rewrite_tables(tree, views, scope)
    _unwrap_mysql_row_constructors(tree)
    # Optimizer hints (/*+ … */) name MySQL indexes and strategies; DuckDB has no use for them.
    for hint in list(tree.find_all(exp.Hint)):
        hint.pop()
    try:
        # RAISE: a MySQL feature DuckDB lacks is an error, not silently dropped. Comments carry
        # nothing DuckDB needs, and leaving them out leaves no question of what they might hide.
        return tree.sql(dialect="duckdb", unsupported_level=ErrorLevel.RAISE, comments=False)
    except SqlglotError as exc:
        raise InvalidSql(f"the query uses something this engine does not support{_detail(exc)}") from None


def _detail(exc: SqlglotError) -> str:
    """sqlglot's message, unless it shows its internals (class or token reprs) rather than the query."""
    text = str(exc)
    if "<class '" in text or "<Token " in text or "sqlglot." in text:
        return ""
    return f": {text}"


def _parse_one(sql: str) -> exp.Expr:
    try:
        statements = [s for s in sqlglot.parse(sql, read="mysql") if s is not None]
    except ParseError as exc:
        raise InvalidSql(_describe_parse_error(exc)) from None
    except SqlglotError as exc:
        raise InvalidSql(f"could not parse the query{_detail(exc)}") from None
    except RecursionError:
        raise InvalidSql("the query is nested too deeply") from None
    if not statements:
        raise InvalidSql("the query is empty")
    if len(statements) > 1:
        raise InvalidSql(f"the query must be one statement; found {len(statements)}")
    return statements[0]


def _describe_parse_error(exc: ParseError) -> str:
    if not exc.errors:
        return f"could not parse the query: {exc}"
    first = exc.errors[0]
    near = (first.get("highlight") or "").strip()
    where = f"line {first.get('line')}, column {first.get('col')}"
    description = str(first.get("description"))
    if "<class '" in description or "<Token " in description:
        description = "syntax error"  # sqlglot described its own internals, not the query
    return f"could not parse the query: {description} ({where}{f', near {near!r}' if near else ''})"


def _require_read_only(tree: exp.Expr, sql: str) -> None:
    if not isinstance(tree, exp.Query | exp.Values):
        raise InvalidSql(
            f"only read-only queries are allowed ({_READ_ONLY_KINDS}); {_first_keyword(sql)} is not"
        )
    # Writes can hide inside a query: MySQL's SELECT … INTO creates a table, and a WITH clause may
    # lead an INSERT.
    hidden = tree.find(exp.Into, exp.DDL, exp.DML, exp.Command)
    if hidden is not None:
        kind = "SELECT … INTO" if isinstance(hidden, exp.Into) else hidden.key.upper()
        raise InvalidSql(f"only read-only queries are allowed ({_READ_ONLY_KINDS}); {kind} is not")


def _first_keyword(sql: str) -> str:
    try:
        tokens = sqlglot.tokenize(sql, read="mysql")
    except SqlglotError:
        return "this statement"
    return tokens[0].text.upper() if tokens else "this statement"


def _function_name(node: exp.Expr) -> str:
    if isinstance(node, exp.Anonymous):
        return node.name.lower()
    return node.sql_name().lower() if isinstance(node, exp.Func) else node.key


def _refuse_denied_functions(tree: exp.Expr) -> None:
    for func in tree.find_all(exp.Func):
        name = _function_name(func)
        if name.startswith(_DENIED_FUNCTION_PREFIXES):
            raise InvalidSql(f"the function {name}() is not allowed in a query")


def _refuse_table_functions(tree: exp.Expr) -> None:
    for table in tree.find_all(exp.Table):
        if not isinstance(table.this, exp.Identifier):
            raise InvalidSql(_table_function_refusal(table.this))
    for udtf in tree.find_all(exp.UDTF):
        if isinstance(udtf, exp.Values):
            continue
        if isinstance(udtf, exp.Lateral) and isinstance(udtf.this, exp.Subquery):
            continue
        raise InvalidSql(_table_function_refusal(udtf))


def _table_function_refusal(node: exp.Expr) -> str:
    return (
        f"table functions such as {_function_name(node)}() are not allowed; a query may only read its dataset"
    )


def _rewrite_tables(tree: exp.Expr, views: Mapping[str, str], scope: str) -> None:
    cte_names = {cte.alias_or_name.lower() for cte in tree.find_all(exp.CTE)}
    shadowing = cte_names & (set(views) | {view.lower() for view in views.values()})
    if shadowing:
        raise InvalidSql(
            f'a WITH clause may not define "{sorted(shadowing)[0]}": that name is the dataset\'s'
        )
    for table in list(tree.find_all(exp.Table)):
        name = table.name
        if table.args.get("db") or table.args.get("catalog"):
            raise InvalidSql(f'unknown table "{table.sql(dialect="mysql")}": a query may only read {scope}')
        if name.lower() in cte_names:
            continue
        view = views.get(name.lower())
        if view is None:
            raise InvalidSql(f'unknown table "{name}": a query may only read {scope}')
        if table.args.get("alias") is None:
            table.set("alias", exp.TableAlias(this=exp.to_identifier(name, quoted=True)))
        table.set("this", exp.to_identifier(view, quoted=True))


def _unwrap_mysql_row_constructors(tree: exp.Expr) -> None:
    # MySQL spells a VALUES row ``ROW(1, 2)``; in DuckDB that is one struct column, not two columns.
    for values in tree.find_all(exp.Values):
        for row in values.expressions:
            inner = row.expressions if isinstance(row, exp.Tuple) else []
            if len(inner) == 1 and isinstance(inner[0], exp.Anonymous) and inner[0].name.upper() == "ROW":
                row.set("expressions", inner[0].expressions)
