"""Whether a CSV file's quoting is canonical: the part of RFC 4180 every CSV parser reads alike.

In a canonical file every quote either opens a field (it follows ``,``, LF or the file's start),
closes one (it precedes ``,``, LF or the file's end), or is half of a ``""`` inside a quoted field;
records end with LF and there is no CR and no byte order mark. Parsers disagree only outside that:
Arrow keeps the text after a closing quote (``"ab"c`` is ``abc``) and the spaces around a quoted
field, where DuckDB's strict mode rejects the one and trims the other.

The scan is one vectorised pass (numpy) in fixed-size chunks: memory stays bounded whatever the
file's size, and it costs about a tenth of converting the file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

_QUOTE, _COMMA, _LF = ord('"'), ord(","), ord("\n")
_BOM = b"\xef\xbb\xbf"
_CHUNK_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True)
class Quoting:
    canonical: bool  # every quote canonical, no CR, no byte order mark, not empty
    # Some field may be a quoted "" (an opening quote followed by another quote: the scan does not
    # tell that from a field that starts with an escaped quote). False means none is.
    empty_quoted_fields: bool


def scan_quoting(path: Path) -> Quoting:
    """How the (possibly empty) file at ``path`` quotes its fields."""
    not_canonical = Quoting(canonical=False, empty_quoted_fields=True)
    # buffer[0] holds the byte before the chunk (LF before the file: a quote may open it).
    buffer = bytearray(_CHUNK_BYTES + 1)
    buffer[0] = _LF
    view = memoryview(buffer)
    is_quote = np.empty(_CHUNK_BYTES, dtype=np.bool_)
    quotes = 0  # seen so far: an even count means the scan is outside quotes
    # The previous chunk ended with a quote whose next byte is this chunk's first: a closing one
    # (that byte must end the field) or an opening one (that byte may make an empty field).
    closing_at_end = opening_at_end = False
    empty_fields = False
    with path.open("rb", buffering=0) as file:
        size = file.readinto(view[1:])
        if not size or buffer.startswith(_BOM, 1):
            return not_canonical
        while size:
            if buffer.find(b"\r", 1, size + 1) != -1:
                return not_canonical
            if closing_at_end and buffer[1] not in (_COMMA, _LF, _QUOTE):
                return not_canonical
            empty_fields = empty_fields or (opening_at_end and buffer[1] == _QUOTE)
            data = np.frombuffer(buffer, dtype=np.uint8, count=size + 1)
            np.equal(data[1:], _QUOTE, out=is_quote[:size])
            at = np.flatnonzero(is_quote[:size]) + 1  # positions in buffer
            # The quotes alternate between opening and closing; a "" pair is a close and an open.
            opening = at[quotes % 2 :: 2]
            closing = at[1 - quotes % 2 :: 2]
            before = data[opening - 1]
            if not ((before == _COMMA) | (before == _LF) | (before == _QUOTE)).all():
                return not_canonical
            after = data[closing[closing < size] + 1]
            if not ((after == _COMMA) | (after == _LF) | (after == _QUOTE)).all():
                return not_canonical
            empty_fields = empty_fields or bool((data[opening[opening < size] + 1] == _QUOTE).any())
            closing_at_end = bool(len(closing)) and int(closing[-1]) == size
            opening_at_end = bool(len(opening)) and int(opening[-1]) == size
            quotes += len(at)
            buffer[0] = buffer[size]
            size = file.readinto(view[1:])
    if quotes % 2:
        return not_canonical
    return Quoting(canonical=True, empty_quoted_fields=empty_fields)
