"""Whether a CSV file's layout is canonical: the part of RFC 4180 that every CSV parser reads alike.

In a canonical file every quote either opens a field (it follows ``,``, a line end or the file's
start), closes one (it precedes ``,``, a line end or the file's end), or is half of a ``""`` inside
a quoted field. Records end with LF, and then the file holds no CR at all, or with CRLF, and then
every CR in it is followed by LF (quoted fields may still hold a lone LF). There is no byte order
mark. Parsers disagree only outside that: Arrow keeps the text after a closing quote (``"ab"c`` is
``abc``) and the spaces around a quoted field, where DuckDB's strict mode rejects the one and trims
the other; Arrow ends a record at a lone CR, DuckDB does not.

The scan is one vectorised pass (numpy) in fixed-size chunks: memory stays bounded whatever the
file's size, and it costs under a tenth of converting the file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

_QUOTE, _COMMA, _LF, _CR = ord('"'), ord(","), ord("\n"), ord("\r")
_BOM = b"\xef\xbb\xbf"
_CHUNK_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True)
class Layout:
    canonical: bool  # as the module says, and not empty
    # Some field may be a quoted "" (an opening quote followed by another quote: the scan does not
    # tell that from a field that starts with an escaped quote). False means none is.
    empty_quoted_fields: bool


_NOT_CANONICAL = Layout(canonical=False, empty_quoted_fields=True)


class _NotCanonical(Exception):
    pass


def scan_layout(path: Path) -> Layout:
    """How the (possibly empty) file at ``path`` quotes its fields and ends its records."""
    with path.open("rb", buffering=0) as file:
        scan = _Scan()
        try:
            while size := file.readinto(scan.chunk):
                scan.check(size)
        except _NotCanonical:
            return _NOT_CANONICAL
        return scan.result()


class _Scan:
    """The state carried from one chunk to the next."""

    def __init__(self) -> None:
        # buffer[0] holds the byte before the chunk (LF before the file: a quote may open it).
        self.buffer = bytearray(_CHUNK_BYTES + 1)
        self.buffer[0] = _LF
        self.chunk = memoryview(self.buffer)[1:]
        self._mask = np.empty(_CHUNK_BYTES, dtype=np.bool_)
        self.chunks = 0
        self.crlf = False  # decided by the first chunk: whether it holds a CR
        self.quotes = 0  # seen so far: an even count means the scan is outside quotes
        self.empty_fields = False
        # The previous chunk ended with a closing quote, an opening quote or a CR, whose next byte
        # (this chunk's first) decides whether it is canonical (or makes a quoted "").
        self.closing_at_end = self.opening_at_end = self.cr_at_end = False

    def check(self, size: int) -> None:
        """Scan the ``size`` bytes just read into ``chunk``; raises ``_NotCanonical``."""
        buffer, first = self.buffer, self.buffer[1]
        has_cr = buffer.find(b"\r", 1, size + 1) != -1
        if self.chunks == 0:
            if buffer.startswith(_BOM, 1):
                raise _NotCanonical
            self.crlf = has_cr
        self.chunks += 1
        if has_cr and not self.crlf:
            raise _NotCanonical
        ends = (_COMMA, _LF, _QUOTE, _CR) if self.crlf else (_COMMA, _LF, _QUOTE)
        if (self.closing_at_end and first not in ends) or (self.cr_at_end and first != _LF):
            raise _NotCanonical
        self.empty_fields = self.empty_fields or (self.opening_at_end and first == _QUOTE)

        data = np.frombuffer(buffer, dtype=np.uint8, count=size + 1)
        quotes = self._positions(data, size, _QUOTE)
        # The quotes alternate between opening and closing; a "" pair is a close and an open.
        opening = quotes[self.quotes % 2 :: 2]
        closing = quotes[1 - self.quotes % 2 :: 2]
        _require_all(data[opening - 1], (_COMMA, _LF, _QUOTE))
        _require_all(data[closing[closing < size] + 1], ends)
        self.empty_fields = self.empty_fields or bool((data[opening[opening < size] + 1] == _QUOTE).any())
        self.closing_at_end = bool(len(closing)) and int(closing[-1]) == size
        self.opening_at_end = bool(len(opening)) and int(opening[-1]) == size
        if self.crlf:
            self._check_crlf(data, size, quotes)
        self.quotes += len(quotes)
        buffer[0] = buffer[size]

    def _check_crlf(self, data: np.ndarray, size: int, quotes: np.ndarray) -> None:
        # Every CR is followed by LF, and every LF outside quotes (a record's end) follows a CR.
        returns = self._positions(data, size, _CR)
        _require_all(data[returns[returns < size] + 1], (_LF,))
        self.cr_at_end = bool(len(returns)) and int(returns[-1]) == size
        feeds = self._positions(data, size, _LF)
        outside = feeds[(np.searchsorted(quotes, feeds) + self.quotes) % 2 == 0]
        _require_all(data[outside - 1], (_CR,))

    def _positions(self, data: np.ndarray, size: int, byte: int) -> np.ndarray:
        """Where ``byte`` is in the chunk, as indexes into ``data`` (1 to ``size``)."""
        np.equal(data[1:], byte, out=self._mask[:size])
        return np.flatnonzero(self._mask[:size]) + 1

    def result(self) -> Layout:
        if self.chunks == 0 or self.quotes % 2 or self.cr_at_end:  # a CR must not end the file
            return _NOT_CANONICAL
        return Layout(canonical=True, empty_quoted_fields=self.empty_fields)


def _require_all(found: np.ndarray, allowed: tuple[int, ...]) -> None:
    if not np.isin(found, allowed).all():
        raise _NotCanonical
