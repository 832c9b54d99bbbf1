"""Result column names as MySQL (and so Domo) gives them.

MySQL names a select item that has no alias and is not a plain column by its text as the user wrote
it: ``count(*)``, ``COUNT( * )``, ``a+1``, ``1``; a string literal by its value (``'x'`` is named
``x``). DuckDB names the same items its own way (``count_star()``, ``(a + 1)``, ``'x'``), so
``name_like_mysql`` gives each of them an alias holding MySQL's name, cut from the original text.

sqlglot's tree keeps the positions of some tokens only (identifiers, literals, function names), so
the items' exact extents come from the token stream: every ``SELECT`` keyword opens a list whose
items are split at commas of the same parenthesis depth. A list is paired with a ``Select`` of the
tree only when the positions the tree does keep all fall inside the matching items; a select that
cannot be paired so keeps DuckDB's names rather than risk a wrong one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError
from sqlglot.tokens import Token, TokenType

Span = tuple[int, int]  # first and last character of an item, inclusive

# Tokens that end a select list at its own depth.
_LIST_ENDS = frozenset(
    {
        TokenType.FROM,
        TokenType.INTO,
        TokenType.WHERE,
        TokenType.GROUP_BY,
        TokenType.HAVING,
        TokenType.WINDOW,
        TokenType.ORDER_BY,
        TokenType.LIMIT,
        TokenType.UNION,
        TokenType.INTERSECT,
        TokenType.EXCEPT,
        TokenType.FOR,
        TokenType.LOCK,
        TokenType.SEMICOLON,
    }
)
# What may stand between SELECT and its first item in MySQL.
_MODIFIER_TOKENS = frozenset({TokenType.HINT, TokenType.DISTINCT, TokenType.ALL, TokenType.STRAIGHT_JOIN})
_MODIFIER_WORDS = frozenset(
    {
        "DISTINCTROW",
        "HIGH_PRIORITY",
        "SQL_SMALL_RESULT",
        "SQL_BIG_RESULT",
        "SQL_BUFFER_RESULT",
        "SQL_CACHE",
        "SQL_NO_CACHE",
        "SQL_CALC_FOUND_ROWS",
    }
)


def name_like_mysql(tree: exp.Expr, sql: str) -> None:
    """Alias, in place, every unaliased select item of ``tree`` (parsed from ``sql``) that is not
    a plain column or a star with the name MySQL would give it.

    Only selects whose names can reach the result are named: the query itself, the first query of
    a UNION/INTERSECT/EXCEPT, derived tables and CTEs (``SELECT *`` passes their names on). Queries
    inside expressions (``IN (SELECT …)``, ``EXISTS``, scalar subqueries) are left as they are.
    """
    try:
        tokens = sqlglot.tokenize(sql, read="mysql")
    except SqlglotError:
        return
    lists = select_lists(tokens)
    selects = list(tree.find_all(exp.Select))
    pairs = _pair_all(selects, lists)
    for select in _naming_selects(tree):
        spans = pairs.get(id(select))
        if spans is not None:
            _alias_items(select, spans, sql)


def _naming_selects(node: exp.Expr) -> list[exp.Select]:
    """The selects of ``node`` whose column names can become the names of its result."""
    found: list[exp.Select] = []
    if isinstance(node, exp.Subquery | exp.CTE):
        found += _naming_selects(node.this)
    elif isinstance(node, exp.SetOperation):
        found += _naming_selects(node.this)  # a set operation takes its names from its first query
    elif isinstance(node, exp.Select):
        found.append(node)
        sources = [node.args.get("from_"), *(node.args.get("joins") or [])]
        for source in sources:
            if source is not None and isinstance(source.this, exp.Subquery):
                found += _naming_selects(source.this)
    if isinstance(node, exp.Query):
        with_ = node.args.get("with_")
        for cte in with_.expressions if with_ is not None else []:
            found += _naming_selects(cte)
    return found


def select_lists(tokens: Sequence[Token]) -> list[list[Span]]:
    """The spans of the items of every SELECT list in ``tokens``, in the order the lists open."""
    finished: list[tuple[int, list[Span]]] = []
    open_lists: list[_OpenList] = []

    def close(lst: _OpenList) -> None:
        lst.finish_item()
        finished.append((lst.order, lst.items))
        open_lists.remove(lst)

    depth = 0
    index = 0
    while index < len(tokens):
        token = tokens[index]
        kind = token.token_type
        if kind == TokenType.R_PAREN:
            for lst in [lst for lst in open_lists if lst.depth == depth]:
                close(lst)
            depth -= 1
        if kind == TokenType.SELECT:
            _extend_enclosing(open_lists, depth, token)
            open_lists.append(_OpenList(depth=depth, order=len(finished) + len(open_lists)))
            index += 1
            while index < len(tokens) and _is_modifier(tokens[index]):
                index += 1
            continue
        innermost = open_lists[-1] if open_lists and open_lists[-1].depth == depth else None
        if innermost is not None and kind in _LIST_ENDS:
            close(innermost)
        elif innermost is not None and kind == TokenType.COMMA:
            innermost.finish_item()
        else:
            _extend_enclosing(open_lists, depth + 1, token)
        if kind == TokenType.L_PAREN:
            depth += 1
        index += 1
    for lst in list(open_lists):
        close(lst)
    return [items for _, items in sorted(finished, key=lambda pair: pair[0])]


@dataclass
class _OpenList:
    depth: int
    order: int
    items: list[Span] = field(default_factory=list)
    current: Span | None = None

    def extend(self, token: Token) -> None:
        self.current = (token.start if self.current is None else self.current[0], token.end)

    def finish_item(self) -> None:
        if self.current is not None:
            self.items.append(self.current)
        self.current = None


def _is_modifier(token: Token) -> bool:
    return token.token_type in _MODIFIER_TOKENS or (
        token.token_type == TokenType.VAR and token.text.upper() in _MODIFIER_WORDS
    )


def _extend_enclosing(open_lists: list[_OpenList], below_depth: int, token: Token) -> None:
    """``token`` belongs to the current item of every open list opened at a depth < ``below_depth``."""
    for lst in open_lists:
        if lst.depth < below_depth:
            lst.extend(token)


def _positions(item: exp.Expr) -> Span | None:
    """The first and last character positions that the tree keeps for ``item``, if any."""
    starts: list[int] = []
    ends: list[int] = []
    for node in item.walk():
        meta = node.meta
        if "start" in meta and "end" in meta:
            starts.append(meta["start"])
            ends.append(meta["end"])
    return (min(starts), max(ends)) if starts else None


def _pair_all(selects: list[exp.Select], lists: list[list[Span]]) -> dict[int, list[Span]]:
    """Which token list holds the items of which select (by ``id``), where that is certain.

    A list fits a select when it has as many items and each item's span holds every position the
    tree keeps for the select's item. The list of an outer query can fit an inner one too (a
    scalar subquery lies inside one of its items), so the deepest selects choose first, each the
    tightest list still free; an outer query then cannot take its subquery's list.
    """
    pairs: dict[int, list[Span]] = {}
    free = list(range(len(lists)))
    for select in sorted(selects, key=lambda s: s.depth, reverse=True):
        positions = [_positions(item) for item in select.expressions]
        if all(p is None for p in positions):
            # Nothing in the tree to check against (``SELECT NULL``): certain only when alone.
            if len(selects) == 1 and len(lists) == 1 and len(lists[0]) == len(positions):
                pairs[id(select)] = lists[0]
            continue
        fitting = [
            index
            for index in free
            if len(lists[index]) == len(positions)
            and all(
                p is None or (span[0] <= p[0] and p[1] <= span[1])
                for p, span in zip(positions, lists[index], strict=True)
            )
        ]
        if fitting:
            chosen = min(fitting, key=lambda index: sum(end - start for start, end in lists[index]))
            pairs[id(select)] = lists[chosen]
            free.remove(chosen)
    return pairs


def _alias_items(select: exp.Select, spans: list[Span], sql: str) -> None:
    for item, (start, end) in zip(list(select.expressions), spans, strict=True):
        if isinstance(item, exp.Alias | exp.Column | exp.Star):
            continue
        name = item.this if isinstance(item, exp.Literal) and item.is_string else sql[start : end + 1]
        if not name:
            continue  # DuckDB refuses an empty name; its own ('') is as close as it gets
        item.replace(exp.Alias(this=item.copy(), alias=exp.to_identifier(name, quoted=True)))
