"""Upload a CSV file to a dataset's stream as parallel gzip parts: the client side of the Stream API.

    upload(path, server=Server(url, token=...), dataset_id=... | stream_id=...) -> Summary

The file is CSV without a header row in Domo's dialect (RFC 4180: quoted fields may hold
newlines), plain or gzip (a ``.gz`` name or the gzip magic bytes). The upload is one execution:
every part is committed together, or the execution is aborted and the dataset keeps its data.

* **Splitting** (``plan``): one sequential pass over the file in large blocks counts ``"`` with
  ``bytes.count`` (~2 GB/s). A newline ends a record iff an even number of quotes precede it
  (``""`` inside a quoted field adds two), so each part ends right after the first such newline at
  or past its share of the size, found with ``bytes.find`` near the split point only. Parts are
  whole records and concatenate back to the file. Parts are compressed and sent while the pass
  goes on.
* **Memory** is bounded: a gzip file is first inflated, streaming, into a temporary file (so
  parts can be read in parallel; this needs free space for the uncompressed file in ``$TMPDIR``),
  and each of the ``parallel`` workers holds one compressed part at a time, in memory up to
  ``SPOOL_BYTES`` and on disk past it.
* **Retries**: a part that meets a connection error, a 5xx or a checksum mismatch (the server
  answers the MD5 of the body it received) is sent again, at most ``RETRIES`` more times with
  exponential backoff. Any 4xx is final: the server's message is shown, with the line of the file
  when it names one.

Only the standard library and ISA-L are used, so the command works in a server-only install.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import math
import random
import shutil
import sys
import tempfile
import threading
import time
from base64 import b64encode
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, TextIO, TypeVar
from urllib.parse import quote, urlencode, urlsplit

from isal import igzip, isal_zlib

from datagrove.errors import DatagroveError

MiB = 1024 * 1024
DEFAULT_PART_BYTES = 64 * MiB
BLOCK_BYTES = 8 * MiB  # reads and scans: big enough that bytes.count and the GIL hand-off are cheap
SEND_BYTES = 1 * MiB  # the progress bar moves once per chunk sent
SPOOL_BYTES = 128 * MiB  # a compressed part larger than this waits on disk instead of in memory
RETRIES = 3
BACKOFF_SECONDS = 0.5
BUSY_WAIT_SECONDS = 600.0  # how long a request waits out the server's 429s (e.g. its upload slots)
TIMEOUT_SECONDS = 900.0  # the server validates a whole part before it answers
IDLE_SECONDS = 2.0  # servers close idle keep-alive connections (uvicorn after 5 s)
GZIP_MAGIC = b"\x1f\x8b"

T = TypeVar("T")


class UploadFailed(DatagroveError):
    """The upload did not complete; ``message`` says why in words for people."""

    code = "upload_failed"


class _Transient(Exception):
    """A failure worth another attempt: a connection error, a 5xx or a checksum mismatch."""


class _Busy(Exception):
    """The server refused for now (429: at a limit) and said when to try again."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class _Cancelled(Exception):
    """Another part failed for good (or the user pressed Ctrl-C): stop sending."""


@dataclass(frozen=True)
class Server:
    """Where to upload and as whom: a developer token, or an OAuth client's id and secret."""

    url: str
    token: str | None = None
    client_id: str | None = None
    client_secret: str | None = None


@dataclass(frozen=True)
class Span:
    """Bytes ``[start, end)`` of the uncompressed file: whole records."""

    number: int
    start: int
    end: int


@dataclass(frozen=True)
class Summary:
    rows: int
    bytes: int
    parts: int
    seconds: float

    def __str__(self) -> str:
        mb = self.bytes / 1e6
        rate = mb / self.seconds if self.seconds > 0 else 0.0
        return (
            f"uploaded {self.rows:,} rows, {mb:.1f} MB in {self.parts} parts, "
            f"{self.seconds:.1f} s, {rate:.1f} MB/s"
        )


def part_count(size: int, parts: int | None = None) -> int:
    """``parts`` when given, else one part per started ``DEFAULT_PART_BYTES``; never below 1."""
    return max(1, parts if parts else math.ceil(size / DEFAULT_PART_BYTES))


def plan(path: Path, parts: int, *, block_bytes: int = BLOCK_BYTES) -> Iterator[Span]:
    """Cut ``path`` into at most ``parts`` spans of about equal size, yielded as they are found.

    Span ``k`` ends at the first record boundary at or past ``k/parts`` of the size (the last one
    at the end of the file), so the spans are contiguous, non-empty and cover the file; a file with
    fewer records than ``parts`` gives fewer spans. Memory use is one block."""
    size = path.stat().st_size
    targets = [size * k // parts for k in range(1, parts)]
    next_target = 0
    quotes = 0  # quotes before ``at`` (parity is what matters)
    offset = 0  # of the block in the file
    start, number = 0, 1
    with open(path, "rb") as source:
        while block := source.read(block_bytes):
            at = 0  # quotes are counted up to here in the block
            while next_target < len(targets) and targets[next_target] <= offset + len(block):
                newline = block.find(b"\n", max(targets[next_target] - 1 - offset, at))
                if newline < 0:
                    break  # the boundary lies in a later block
                quotes += block.count(b'"', at, newline)
                at = newline + 1
                if quotes % 2:
                    continue  # a newline inside a quoted field
                end = offset + at
                yield Span(number, start, end)
                number, start = number + 1, end
                while next_target < len(targets) and targets[next_target] <= end:
                    next_target += 1
            quotes += block.count(b'"', at)
            offset += len(block)
    if offset > start:
        yield Span(number, start, offset)


def line_at(path: Path, offset: int) -> int:
    """The 1-based physical line on which byte ``offset`` of ``path`` lies (read only on failure,
    so that ``plan`` counts one character instead of two)."""
    newlines = 0
    with open(path, "rb") as source:
        while offset > 0 and (block := source.read(min(BLOCK_BYTES, offset))):
            newlines += block.count(b"\n")
            offset -= len(block)
    return newlines + 1


@contextmanager
def plain_file(path: Path) -> Iterator[Path]:
    """``path`` itself, or for a gzip file its contents inflated into a temporary file that is
    removed on exit."""
    with open(path, "rb") as probe:
        gzipped = path.name.endswith(".gz") or probe.read(2) == GZIP_MAGIC
    if not gzipped:
        yield path
        return
    with tempfile.TemporaryDirectory(prefix="datagrove-upload-") as scratch:
        target = Path(scratch) / path.name.removesuffix(".gz")
        try:
            with igzip.open(path, "rb") as source, open(target, "wb") as sink:
                shutil.copyfileobj(source, sink, BLOCK_BYTES)
        except (igzip.BadGzipFile, EOFError, isal_zlib.IsalError) as exc:  # type: ignore[misc]
            raise UploadFailed(f"{path} is not a valid gzip file: {exc}") from exc
        except OSError as exc:
            raise UploadFailed(
                f"could not inflate {path} into {scratch} (set TMPDIR elsewhere?): {exc}"
            ) from exc
        yield target


class Compressed:
    """One span read from the file and gzipped at level 1 with ISA-L, with the MD5 of the result."""

    def __init__(self, path: Path, span: Span, stop: threading.Event | None = None) -> None:
        self.span = span
        self.body: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)  # noqa: SIM115 - close()
        compressor = isal_zlib.compressobj(1, isal_zlib.DEFLATED, 16 + isal_zlib.MAX_WBITS)
        md5 = hashlib.md5(usedforsecurity=False)
        with open(path, "rb") as source:
            source.seek(span.start)
            remaining = span.end - span.start
            while remaining:
                if stop is not None and stop.is_set():
                    self.close()
                    raise _Cancelled
                raw = source.read(min(BLOCK_BYTES, remaining))
                if not raw:
                    self.close()
                    raise UploadFailed(f"{path} became shorter while it was being uploaded")
                remaining -= len(raw)
                self._write(compressor.compress(raw), md5)
        self._write(compressor.flush(), md5)
        self.size = self.body.tell()
        self.md5 = md5.hexdigest()

    def _write(self, data: bytes, md5: Any) -> None:
        md5.update(data)
        self.body.write(data)

    def chunks(self) -> Iterator[bytes]:
        self.body.seek(0)
        while chunk := self.body.read(SEND_BYTES):
            yield chunk

    def close(self) -> None:
        self.body.close()


class Progress:
    """Bytes of the file sent so far, drawn as a one-line bar on ``stream`` when it is a terminal.

    Bytes are counted as uncompressed bytes (each compressed chunk sent stands for its share of
    its part), so the total is the file's size and the rate is comparable to the summary's."""

    WIDTH = 30

    def __init__(self, total: int, parts: int, stream: TextIO) -> None:
        self.total, self.parts, self.stream = total, parts, stream
        self.sent = 0.0
        self.done = 0
        self.started = time.monotonic()
        self._drawn = 0.0
        self._lock = threading.Lock()
        self._live = stream.isatty()

    def add(self, sent: float = 0.0, *, part_done: bool = False) -> None:
        with self._lock:
            self.sent += sent
            self.done += part_done
            now = time.monotonic()
            if self._live and (now - self._drawn >= 0.1 or part_done):
                self._drawn = now
                self.stream.write("\r" + self.line())
                self.stream.flush()

    def line(self) -> str:
        share = min(1.0, self.sent / self.total) if self.total else 1.0
        filled = int(share * self.WIDTH)
        elapsed = max(time.monotonic() - self.started, 1e-9)
        return (
            f"[{'#' * filled}{' ' * (self.WIDTH - filled)}] {share * 100:3.0f}% "
            f"{self.sent / 1e6:.1f} MB / {self.total / 1e6:.1f} MB  {self.sent / 1e6 / elapsed:.1f} MB/s  "
            f"parts {self.done}/{self.parts}"
        )

    def close(self) -> None:
        if self._live:
            self.stream.write("\n")
            self.stream.flush()


class Client:
    """JSON over HTTP/1.1 keep-alive, one connection per thread, with the server's errors raised as
    ``UploadFailed`` (4xx) or ``_Transient`` (connection errors, 5xx)."""

    def __init__(self, server: Server) -> None:
        parts = urlsplit(server.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise UploadFailed(f"the server URL must look like http://host:port, not {server.url!r}")
        self._scheme, self._host, self._port = parts.scheme, parts.hostname, parts.port
        self._prefix = parts.path.rstrip("/")
        self._local = threading.local()
        self._auth: dict[str, str] = {}
        if server.token:
            self._auth = {"X-DOMO-Developer-Token": server.token}
        elif server.client_id and server.client_secret:
            basic = b64encode(f"{server.client_id}:{server.client_secret}".encode()).decode()
            answer = self.request(
                "getting an OAuth token",
                "POST",
                "/oauth/token",
                body=urlencode({"grant_type": "client_credentials"}).encode(),
                headers={
                    "Authorization": f"Basic {basic}",
                    "Content-Type": "application/x-www-form-urlencoded",
                },
            )
            self._auth = {"Authorization": f"bearer {answer['access_token']}"}
        else:
            raise UploadFailed(
                "give a developer token (--token) or an OAuth client (--client-id, --client-secret)"
            )

    def request(self, what: str, method: str, path: str, **options: Any) -> Any:
        """``call`` again after each transient failure (see ``retrying``); ``what`` names it."""
        return retrying(what, lambda: self.call(method, path, **options))

    def call(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        body: bytes | Callable[[], Iterator[bytes]] | None = None,
        headers: dict[str, str] | None = None,
        length: int | None = None,
    ) -> Any:
        """Send one request and answer its JSON (None when empty). ``body`` may be a function that
        makes a fresh iterator of chunks (then ``length`` is the Content-Length)."""
        sent: dict[str, str] = {"Accept": "application/json", **self._auth, **(headers or {})}
        payload: bytes | Iterator[bytes] | None = body() if callable(body) else body
        if json_body is not None:
            payload = json.dumps(json_body).encode()
            sent["Content-Type"] = "application/json"
        if isinstance(payload, bytes):
            length = len(payload)
        if payload is not None or method != "GET":
            sent["Content-Length"] = str(length or 0)
        connection = self._connection()
        try:
            try:
                connection.request(method, self._prefix + path, body=payload, headers=sent)
            except OSError:
                if connection.sock is None:
                    raise  # not connected
                # The server may answer early (and close) while the body is sent; its answer says why.
            response = connection.getresponse()
            raw = response.read()
        except (OSError, http.client.HTTPException) as exc:
            self._drop()
            raise _Transient(f"{type(exc).__name__}: {exc}") from exc
        except BaseException:
            self._drop()
            raise
        if response.getheader("connection", "").lower() == "close":
            self._drop()
        self._local.used = time.monotonic()
        try:
            answer = json.loads(raw) if raw.strip() else None
        except ValueError:
            answer = {"message": raw[:500].decode("utf-8", "replace")}
        if response.status >= 500:
            raise _Transient(f"the server answered {response.status}: {_message(answer)}")
        if response.status == 429:
            retry_after = response.getheader("retry-after", "")
            raise _Busy(_message(answer), float(retry_after) if retry_after.isdigit() else 1.0)
        if response.status >= 400:
            refused = UploadFailed(_message(answer), status=response.status)
            if isinstance(answer, dict) and isinstance(answer.get("details"), dict):
                refused.details.update(answer["details"])
            raise refused
        return answer

    def _connection(self) -> http.client.HTTPConnection:
        connection: http.client.HTTPConnection | None = getattr(self._local, "connection", None)
        if connection is not None and time.monotonic() - self._local.used > IDLE_SECONDS:
            self._drop()  # the server may have closed it meanwhile; a new one costs less than a failure
            connection = None
        if connection is None:
            kind = http.client.HTTPSConnection if self._scheme == "https" else http.client.HTTPConnection
            connection = kind(self._host, self._port, timeout=TIMEOUT_SECONDS)
            self._local.connection = connection
        return connection

    def _drop(self) -> None:
        connection = getattr(self._local, "connection", None)
        if connection is not None:
            connection.close()
            self._local.connection = None


def _message(answer: Any) -> str:
    if isinstance(answer, dict) and answer.get("message"):
        return str(answer["message"])
    return json.dumps(answer) if answer is not None else "no message"


def retrying(what: str, attempt: Callable[[], T]) -> T:
    """``attempt()``, again after each ``_Transient`` failure, at most ``RETRIES`` more times; and
    again after the server's Retry-After while it is busy (429), for at most ``BUSY_WAIT_SECONDS``."""
    failures = 0
    busy_until: float | None = None
    while True:
        try:
            return attempt()
        except _Busy as exc:
            busy_until = busy_until or time.monotonic() + BUSY_WAIT_SECONDS
            # A little jitter, so that parallel parts refused together do not return together.
            wait = exc.retry_after * (1 + random.random() / 2)  # noqa: S311 - not for security
            if time.monotonic() + wait > busy_until:
                raise UploadFailed(
                    f"{what}: the server stayed busy for {BUSY_WAIT_SECONDS:g} s; the last time: {exc}"
                ) from exc
            time.sleep(wait)
        except _Transient as exc:
            if failures == RETRIES:
                raise UploadFailed(f"{what} failed {RETRIES + 1} times; the last time: {exc}") from exc
            time.sleep(BACKOFF_SECONDS * 2**failures)
            failures += 1


def upload(
    path: Path,
    *,
    server: Server,
    dataset_id: str | None = None,
    stream_id: int | None = None,
    parts: int | None = None,
    parallel: int = 4,
    replace: bool = False,
    progress: TextIO = sys.stderr,
) -> Summary:
    """Upload ``path`` to the stream ``stream_id`` (or the stream of ``dataset_id``) in one execution
    that APPENDs (or REPLACEs with ``replace``), and commit it. On any failure, Ctrl-C included,
    the execution is aborted (best effort) before the exception propagates."""
    started = time.monotonic()
    if (dataset_id is None) == (stream_id is None):
        raise UploadFailed("give either a dataset id or a stream id")
    if parallel < 1 or (parts is not None and parts < 1):
        raise UploadFailed("--parts and --parallel must be at least 1")
    if not path.is_file():
        raise UploadFailed(f"{path} is not a file")
    client = Client(server)
    if stream_id is None:
        query = quote(f"dataSource.id:{dataset_id}")
        found = client.request("finding the stream", "GET", f"/v1/streams/search?q={query}")
        if not found:
            raise UploadFailed(f"dataset {dataset_id} has no stream (or you cannot see it)")
        stream_id = int(found[0]["id"])
    with plain_file(path) as source:
        size = source.stat().st_size
        if size == 0:
            raise UploadFailed(f"{path} is empty; there is nothing to upload")
        count = part_count(size, parts)
        executions = f"/v1/streams/{stream_id}/executions"
        method = "REPLACE" if replace else "APPEND"
        begun = client.request(
            "starting an execution", "POST", executions, json_body={"updateMethod": method}
        )
        execution = f"{executions}/{begun['id']}"
        bar = Progress(size, count, progress)
        try:
            sent = _send_parts(client, execution, source, count, parallel, bar, label=path.name)
            committed = client.request("the commit", "PUT", f"{execution}/commit")
        except BaseException as exc:
            bar.close()
            outcome = "the upload was aborted and the dataset is unchanged"
            try:
                client.request("the abort", "PUT", f"{execution}/abort")
            except UploadFailed as refused:  # e.g. a commit that went through after all
                outcome = f"aborting the execution failed too ({refused})"
            if isinstance(exc, UploadFailed):
                raise UploadFailed(f"{exc.message}; {outcome}") from exc
            raise
        bar.close()
    return Summary(int(committed.get("rows") or 0), size, sent, time.monotonic() - started)


def _send_parts(
    client: Client, execution: str, source: Path, count: int, parallel: int, bar: Progress, *, label: str
) -> int:
    """Plan, compress and PUT every part, ``parallel`` at a time; answer how many parts there were.
    The first final failure stops the others and is raised."""
    stop = threading.Event()
    futures: list[Future[None]] = []

    def stop_on_failure(future: Future[None]) -> None:
        if not future.cancelled() and future.exception() is not None:
            stop.set()

    with ThreadPoolExecutor(max_workers=parallel, thread_name_prefix="upload") as pool:
        try:
            for span in plan(source, count):
                if stop.is_set():
                    break
                future = pool.submit(_send_part, client, execution, source, span, bar, stop, label)
                future.add_done_callback(stop_on_failure)
                futures.append(future)
            bar.parts = len(futures)
            wait(futures, return_when=FIRST_EXCEPTION)
        except BaseException:
            stop.set()
            raise
        finally:
            for future in futures:
                future.cancel()
    failures = [exc for f in futures if not f.cancelled() and (exc := f.exception()) is not None]
    if failures:
        # The first real failure, not one of the cancellations it caused.
        raise min(failures, key=lambda exc: isinstance(exc, _Cancelled))
    return len(futures)


def _send_part(
    client: Client, execution: str, source: Path, span: Span, bar: Progress, stop: threading.Event, label: str
) -> None:
    part = Compressed(source, span, stop)
    share = (span.end - span.start) / part.size

    def attempt() -> None:
        sent = 0

        def chunks() -> Iterator[bytes]:
            nonlocal sent
            for chunk in part.chunks():
                if stop.is_set():
                    raise _Cancelled
                yield chunk
                sent += len(chunk)
                bar.add(len(chunk) * share)

        try:
            answer = client.call(
                "PUT",
                f"{execution}/part/{span.number}",
                body=chunks,
                length=part.size,
                headers={"Content-Type": "text/csv", "Content-Encoding": "gzip"},
            )
        except BaseException:
            bar.add(-sent * share)
            raise
        checksum = (answer or {}).get("part", {}).get("checksum")
        if checksum != part.md5:
            bar.add(-sent * share)
            raise _Transient(f"the server received a body with MD5 {checksum}, not {part.md5}")
        bar.add(part_done=True)

    try:
        retrying(f"part {span.number}", attempt)
    except UploadFailed as exc:
        line = exc.details.get("line")
        if isinstance(line, int):
            raise UploadFailed(
                f"{exc.message} (line {line_at(source, span.start) + line - 1} of {label})"
            ) from exc
        raise
    finally:
        part.close()
