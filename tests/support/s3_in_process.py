"""moto's S3 server in this test process (a thread), for tests that must reach behind the S3 API:
make objects look older than they are (S3 has no call that sets Last-Modified, and maintenance's
safety ages count from it), or refuse CopyObject above a size as AWS does above 5 GiB (moto copies
anything). Servers and CLI processes under test reach it over loopback like ``tests/support/s3.py``'s.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from urllib.parse import urlparse

from moto.core import DEFAULT_ACCOUNT_ID
from moto.s3.exceptions import S3ClientError
from moto.s3.models import S3Backend, s3_backends
from moto.server import ThreadedMotoServer

from tests.support.s3 import MotoServer
from tests.support.server import free_port


class InProcessMoto(MotoServer):
    """A ``MotoServer`` whose objects this process can reach directly."""

    def age(self, uri: str, seconds: float) -> None:
        """Make the object at ``uri`` (``s3://bucket/key``) look placed ``seconds`` earlier."""
        parsed = urlparse(uri)
        key = _backend().buckets[parsed.netloc].keys[parsed.path.lstrip("/")]
        key.last_modified = key.last_modified - timedelta(seconds=seconds)

    @contextlib.contextmanager
    def copies_refused_above(self, limit: int) -> Iterator[None]:
        """For the ``with`` block, CopyObject of a source larger than ``limit`` bytes fails as AWS
        fails one above 5 GiB."""
        original = S3Backend.copy_object

        def copy_object(backend: S3Backend, src_key: Any, *args: Any, **kwargs: Any) -> Any:
            if src_key.size > limit:
                raise S3ClientError(
                    "InvalidRequest",
                    "The specified copy source is larger than the maximum allowable size for a copy source",
                )
            return original(backend, src_key, *args, **kwargs)

        S3Backend.copy_object = copy_object  # type: ignore[method-assign]
        try:
            yield
        finally:
            S3Backend.copy_object = original  # type: ignore[method-assign]


def _backend() -> S3Backend:
    return s3_backends[DEFAULT_ACCOUNT_ID]["aws"]


@contextlib.contextmanager
def moto_in_process() -> Iterator[InProcessMoto]:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # a line per request otherwise
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield InProcessMoto(f"http://127.0.0.1:{port}")
    finally:
        server.stop()
