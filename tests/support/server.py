"""A real Datagrove server in a subprocess, on a free port, with its own data directory."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class RunningServer:
    data_dir: Path
    catalog_url: str | None
    port: int = field(default_factory=free_port)
    client_id: str = field(default_factory=lambda: "client-" + uuid.uuid4().hex[:8])
    client_secret: str = field(default_factory=lambda: uuid.uuid4().hex)
    token: str = field(default_factory=lambda: "DDCI" + uuid.uuid4().hex)
    extra_env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.data_dir / "server.log"

    def start(self) -> RunningServer:
        env = {
            # Test machines may have little disk: the default floor (1 GiB) would refuse uploads.
            "DATAGROVE_MIN_FREE_DISK_BYTES": str(1024**2),
            **os.environ,
            "DATAGROVE_DATA_DIR": str(self.data_dir),
            "DATAGROVE_PORT": str(self.port),
            "DATAGROVE_BOOTSTRAP_CLIENT_ID": self.client_id,
            "DATAGROVE_BOOTSTRAP_CLIENT_SECRET": self.client_secret,
            "DATAGROVE_BOOTSTRAP_TOKEN": self.token,
            **self.extra_env,
        }
        if self.catalog_url:
            env["DATAGROVE_CATALOG_URL"] = self.catalog_url
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")  # noqa: SIM115 - the child owns it
        self.process = subprocess.Popen(
            [sys.executable, "-m", "datagrove.cli", "serve"], env=env, stdout=log, stderr=subprocess.STDOUT
        )
        # Generous: on a loaded 2-core machine a start (imports, migrations) has taken over a minute.
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited early:\n{self.log_path.read_text()[-4000:]}")
            try:
                if httpx.get(f"{self.base_url}/health", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.kill()  # not left running behind the failed test
        raise RuntimeError(f"server did not become healthy:\n{self.log_path.read_text()[-4000:]}")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def kill(self) -> None:
        """SIGKILL: no cleanup at all, as in a crash."""
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def client(self) -> httpx.Client:
        """An HTTP client authenticated with the bootstrap developer token."""
        return httpx.Client(
            base_url=self.base_url, headers={"X-DOMO-Developer-Token": self.token}, timeout=120
        )

    def oauth_token(self, scope: str | None = None) -> str:
        data = {"grant_type": "client_credentials"}
        if scope:
            data["scope"] = scope
        response = httpx.post(
            f"{self.base_url}/oauth/token", data=data, auth=(self.client_id, self.client_secret), timeout=30
        )
        response.raise_for_status()
        return response.json()["access_token"]
