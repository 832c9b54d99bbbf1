"""Request bodies: lenient JSON for Domo's clients, and uploads streamed to a staging file."""

from __future__ import annotations

import json
from typing import Any

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from datagrove.errors import BadRequest, PayloadTooLarge
from datagrove.tables.staging import StagedUpload

# Hand the writer ~1 MiB at a time: big enough that the thread hop is cheap, small enough for memory.
UPLOAD_FLUSH_BYTES = 1024 * 1024


async def json_object(request: Request, *, required: bool = True) -> dict[str, Any]:
    """The body as a JSON object. Clients send no body, ``null``, ``""`` or ``{}`` on action
    endpoints, and whole objects with read-only fields; callers pick the keys they know."""
    return parse_json_object(await read_body(request), required=required)


async def read_body(request: Request) -> bytes:
    """The whole body of a JSON request, refused (413) past the ``max_json_bytes`` setting."""
    limit = request.app.state.settings.max_json_bytes
    length = request.headers.get("content-length")
    if length and length.isdigit() and int(length) > limit:
        raise PayloadTooLarge(f"the JSON body is larger than {limit} bytes")
    raw = bytearray()
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > limit:
            raise PayloadTooLarge(f"the JSON body is larger than {limit} bytes")
    return bytes(raw)


def parse_json_object(raw: bytes, *, required: bool) -> dict[str, Any]:
    """``raw`` as a JSON object; with ``required=False`` an empty body or a non-object is ``{}``."""
    if not raw.strip():
        if required:
            raise BadRequest("a JSON body is required")
        return {}
    try:
        value = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest(f"the body is not valid JSON: {exc}") from exc
    if isinstance(value, dict):
        return value
    if required:
        raise BadRequest("the body must be a JSON object")
    return {}


def gzip_hinted(request: Request) -> bool:
    encoding = request.headers.get("content-encoding", "").lower()
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    return "gzip" in encoding or content_type in ("application/gzip", "application/x-gzip")


async def receive_upload(request: Request, upload: StagedUpload) -> None:
    """Stream the request body into ``upload`` (decompressing off the event loop), then finish it."""
    limit = request.app.state.settings.max_upload_bytes
    length = request.headers.get("content-length")
    if length and length.isdigit() and int(length) > limit:
        raise PayloadTooLarge(f"the upload is larger than the limit of {limit} bytes")
    pending = bytearray()
    try:
        async for chunk in request.stream():
            pending += chunk
            if len(pending) >= UPLOAD_FLUSH_BYTES:
                data, pending = bytes(pending), bytearray()
                await run_in_threadpool(upload.write, data)
        if pending:
            await run_in_threadpool(upload.write, bytes(pending))
        await run_in_threadpool(upload.finish)
    except BaseException:
        upload.abort()
        raise
