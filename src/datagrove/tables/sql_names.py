"""Quoting of identifiers and literals for SQL that Datagrove itself builds (never for user SQL)."""


def quote_identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def quote_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"
