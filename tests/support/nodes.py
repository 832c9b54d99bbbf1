"""Several server processes on one PostgreSQL catalog and one moto bucket, as many nodes run."""

from __future__ import annotations

import base64
import contextlib
import os
from collections.abc import Iterator, Mapping

import pytest

from tests.support.postgres import private_schema
from tests.support.s3 import MotoServer
from tests.support.server import RunningServer


@contextlib.contextmanager
def running_nodes(
    moto: MotoServer,
    tmp_path_factory: pytest.TempPathFactory,
    *,
    name: str,
    count: int = 3,
    env: Mapping[str, str] | None = None,
) -> Iterator[list[RunningServer]]:
    """``count`` started nodes sharing a fresh catalog schema, a new bucket, the sealing and signing
    keys and the bootstrap credentials; stopped afterwards. ``env`` is added to every node's."""
    shared = {
        **moto.env(moto.new_bucket()),
        "DATAGROVE_SECRET_KEY": base64.b64encode(os.urandom(32)).decode(),
        "DATAGROVE_SIGNING_KEY": base64.b64encode(os.urandom(32)).decode(),
        **(env or {}),
    }
    with private_schema() as catalog_url:
        first = RunningServer(
            data_dir=tmp_path_factory.mktemp(f"{name}1"), catalog_url=catalog_url, extra_env=shared
        )
        started = [first.start()]  # the first migrates the catalog and creates the admin
        try:
            for number in range(2, count + 1):
                node = RunningServer(
                    data_dir=tmp_path_factory.mktemp(f"{name}{number}"),
                    catalog_url=catalog_url,
                    extra_env=shared,
                    client_id=first.client_id,
                    client_secret=first.client_secret,
                    token=first.token,
                )
                started.append(node.start())
            yield started
        finally:
            for node in started:
                node.stop()
