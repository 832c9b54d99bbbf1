"""A query's answer on the wire: sent while it is produced, with clean errors while they can be.

The answer is read into a buffer of ``buffer_bytes`` before anything is sent. One that ends within
it (nearly every query) goes out whole, with a Content-Length, and an error met on the way is an
ordinary error response (400 ``query_limit_exceeded`` or ``invalid_sql``, or 500). A longer answer
goes out chunked as it is produced. If it fails after that (the row or time limit is passed, the
engine fails), the response is cut off without its final chunk, so no client can take it for a
complete answer, and the failure is logged; the status line, already sent, said 200.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator

import anyio
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response, StreamingResponse
from starlette.types import Send

from datagrove.errors import DatagroveError
from datagrove.services.query import QueryAnswer

log = logging.getLogger("datagrove.query")

JSON = "application/json;charset=UTF-8"


async def stream_answer(
    answer: QueryAnswer,
    *,
    head: bytes,
    tail: Callable[[], bytes],
    buffer_bytes: int,
    send_timeout: float,
    trace_id: str = "",
) -> Response:
    """The response ``head`` + the answer's chunks + ``tail()`` (called once every row is out).

    Raises the answer's error if it fails within the buffer; the answer is closed either way. A
    client that takes none of the answer for ``send_timeout`` seconds is cut off, so it cannot hold
    the query's connection, memory and files for as long as it keeps its socket open.
    """
    chunks = iter(answer)
    buffered = [head]
    size = 0
    try:
        while size < buffer_bytes:
            chunk = await run_in_threadpool(next, chunks, None)
            if chunk is None:
                buffered.append(tail())
                return Response(b"".join(buffered), media_type=JSON)
            buffered.append(chunk)
            size += len(chunk)
    except BaseException:
        await run_in_threadpool(answer.close)
        raise
    return _AnswerResponse(answer, chunks, buffered, tail, trace_id, send_timeout)


class _AnswerResponse(StreamingResponse):
    """Starlette's streaming response (it stops when the client goes away), sending the answer."""

    def __init__(
        self,
        answer: QueryAnswer,
        chunks: Iterator[bytes],
        buffered: list[bytes],
        tail: Callable[[], bytes],
        trace_id: str,
        send_timeout: float,
    ) -> None:
        super().__init__(content=(), media_type=JSON)
        self._send_timeout = send_timeout
        self._answer = answer
        self._chunks = chunks
        self._buffered = buffered
        self._tail = tail
        self._trace_id = trace_id

    async def stream_response(self, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        try:
            first, self._buffered = b"".join(self._buffered), []
            with anyio.fail_after(self._send_timeout):
                await send({"type": "http.response.body", "body": first, "more_body": True})
            while (chunk := await run_in_threadpool(next, self._chunks, None)) is not None:
                with anyio.fail_after(self._send_timeout):
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
        except TimeoutError:
            log.warning(
                "query answer cut short",
                extra={
                    "fields": {
                        "dataset": self._answer.dataset_id,
                        "rows": self._answer.rows,
                        "code": "client_too_slow",
                        "message": f"the client took none of the answer for {self._send_timeout:g} s",
                        "toe": self._trace_id,
                    }
                },
            )
            return  # without the final chunk: the server closes the connection
        except DatagroveError as exc:
            log.warning(
                "query answer cut short",
                exc_info=exc if exc.status >= 500 else None,  # a failure of ours: keep its cause
                extra={
                    "fields": {
                        "dataset": self._answer.dataset_id,
                        "rows": self._answer.rows,
                        "code": exc.code,
                        "message": exc.message if exc.status < 500 else "internal error",
                        "toe": self._trace_id,
                    }
                },
            )
            return  # without the final chunk: the server closes the connection
        finally:
            # Also when the client went away and this task is being cancelled.
            with anyio.CancelScope(shield=True):
                await run_in_threadpool(self._answer.close)
        await send({"type": "http.response.body", "body": self._tail(), "more_body": False})
