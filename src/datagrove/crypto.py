"""``SecretBox``: credentials encrypted at rest, with a key that never enters the catalog.

Account credentials and the secret items of a connector's configuration are sealed with AES-256-GCM
(``cryptography``'s AEAD) before they reach the catalog database. The key comes from the
``secret_key`` setting (base64 of 32 bytes; what every node of a multi-node install shares) or else
from the file ``secret.key`` in the data directory, created with mode 0600 on first start. A copy
of the catalog alone (a backup, a dump of PostgreSQL) therefore reveals no credential.

Each sealed value is bound to a *context* (e.g. ``account:12``) as associated data, so a
ciphertext copied from one row to another does not decrypt there.
"""

from __future__ import annotations

import base64
import binascii
import os
import time
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from datagrove.errors import DatagroveError

KEY_BYTES = 32
NONCE_BYTES = 12
#: The first byte of every sealed value: lets a later key scheme sit beside this one.
VERSION = b"\x01"
KEY_FILE_NAME = "secret.key"


class SecretKeyError(DatagroveError):
    """The key is missing, malformed, or not the one the value was sealed with."""


class SecretBox:
    def __init__(self, key: bytes) -> None:
        if len(key) != KEY_BYTES:
            raise SecretKeyError(f"the secret key must be {KEY_BYTES} bytes, not {len(key)}")
        self._aead = AESGCM(key)

    @classmethod
    def from_setting_or_file(cls, setting: str | None, data_dir: Path) -> SecretBox:
        """The box for ``setting`` (base64) if given, else for the key file in ``data_dir``,
        created (0600, never overwritten) when there is none."""
        if setting:
            try:
                return cls(base64.b64decode(setting, validate=True))
            except (binascii.Error, ValueError):
                raise SecretKeyError("the secret_key setting is not valid base64") from None
        return cls(_key_file(data_dir / KEY_FILE_NAME))

    def seal(self, plaintext: str, *, context: str) -> str:
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, plaintext.encode(), context.encode())
        return base64.b64encode(VERSION + nonce + sealed).decode("ascii")

    def open(self, sealed: str, *, context: str) -> str:
        try:
            raw = base64.b64decode(sealed, validate=True)
            if raw[:1] != VERSION:
                raise ValueError("unknown version")
            nonce, body = raw[1 : 1 + NONCE_BYTES], raw[1 + NONCE_BYTES :]
            return self._aead.decrypt(nonce, body, context.encode()).decode()
        except (InvalidTag, ValueError, binascii.Error):
            # Never say more: the message may reach a log line or a run's error.
            raise SecretKeyError(
                f"a stored credential ({context}) cannot be decrypted with this server's secret key"
            ) from None


def _key_file(path: Path) -> bytes:
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        # O_EXCL: two processes starting at once cannot both write a key; the loser reads the winner's.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    else:
        with os.fdopen(fd, "wb") as out:
            out.write(base64.b64encode(os.urandom(KEY_BYTES)) + b"\n")
            out.flush()
            os.fsync(out.fileno())
    text = path.read_bytes().strip()
    for _ in range(50):  # another process may have created the file and not written it yet
        if text:
            break
        time.sleep(0.02)
        text = path.read_bytes().strip()
    if not text:
        raise SecretKeyError(f"the key file {path} is empty")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise SecretKeyError(f"the key file {path} is not valid base64") from None
