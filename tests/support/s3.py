"""A real S3-compatible server for tests: moto's, in a subprocess on a free loopback port."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pyarrow.fs as pafs

from tests.support.server import free_port

ACCESS_KEY_ID = "dg-test-access-key"
SECRET_ACCESS_KEY = "dg-test-secret-" + uuid.uuid4().hex  # a value a leak check can look for
REGION = "us-east-1"


@dataclass(frozen=True)
class MotoServer:
    endpoint: str

    def filesystem(self) -> pafs.S3FileSystem:
        return pafs.S3FileSystem(
            access_key=ACCESS_KEY_ID,
            secret_key=SECRET_ACCESS_KEY,
            region=REGION,
            endpoint_override=self.endpoint,
            force_virtual_addressing=False,
            allow_bucket_creation=True,
        )

    def new_bucket(self) -> str:
        name = "dg-" + uuid.uuid4().hex[:16]
        self.filesystem().create_dir(name)
        return name

    def env(self, bucket: str, prefix: str = "datagrove") -> dict[str, str]:
        """A server's settings for storage in ``bucket``."""
        return {
            "DATAGROVE_STORAGE_URL": f"s3://{bucket}/{prefix}",
            "DATAGROVE_S3_ENDPOINT": self.endpoint,
            "DATAGROVE_S3_REGION": REGION,
            "DATAGROVE_S3_ACCESS_KEY_ID": ACCESS_KEY_ID,
            "DATAGROVE_S3_SECRET_ACCESS_KEY": SECRET_ACCESS_KEY,
            "DATAGROVE_S3_PATH_STYLE": "true",
        }

    def objects(self, bucket: str, prefix: str = "") -> list[str]:
        selector = pafs.FileSelector(f"{bucket}/{prefix}".rstrip("/"), recursive=True, allow_not_found=True)
        return [i.path for i in self.filesystem().get_file_info(selector) if i.type == pafs.FileType.File]


@contextmanager
def moto_server(log_dir: Path) -> Iterator[MotoServer]:
    """moto's S3 server on a free port for the ``with`` block."""
    port = free_port()
    log_dir.mkdir(parents=True, exist_ok=True)
    with open(log_dir / f"moto-{port}.log", "ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"moto exited early: see {log_dir}")
            try:
                httpx.get(endpoint + "/moto-api/", timeout=1)
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise RuntimeError("moto did not start") from None
                time.sleep(0.1)
        yield MotoServer(endpoint)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
