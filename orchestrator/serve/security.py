"""The service's gate, as one ASGI middleware: the API token, then the request-body cap.

With a token configured, every HTTP request without ``Authorization: Bearer TOKEN`` gets 401 before its
body is read (compared in constant time), except the page's shell and the API docs (``_open``). A
body longer than ``max_body_bytes`` gets 413, whether it announces its length or streams it: the body is
read up to the cap and replayed to the app.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


async def problem(send: Send, status: int, error: str, headers: list[tuple[bytes, bytes]] | None = None) -> None:
    """Answer with the API's error JSON (``{"error": ..., "status": ...}``)."""
    body = json.dumps({"error": error, "status": status}).encode()
    head = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *(headers or [])]
    await send({"type": "http.response.start", "status": status, "headers": head})
    await send({"type": "http.response.body", "body": body})


class Gate:
    """Bearer-token check and body-size cap in front of ``app``."""

    def __init__(self, app: ASGIApp, token: str | None, max_body_bytes: int) -> None:
        self.app, self.max_body_bytes = app, max_body_bytes
        self._expected = f"Bearer {token}".encode() if token else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        if (
            self._expected is not None
            and not _open(scope)
            and not secrets.compare_digest(headers.get(b"authorization", b""), self._expected)
        ):
            await problem(send, 401, "authorization: missing or wrong bearer token", [(b"www-authenticate", b"Bearer")])
            return
        declared = headers.get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_body_bytes):
            await problem(send, 413, self._too_large(declared.decode("latin-1")))
            return
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                await problem(send, 413, self._too_large(f"more than {size}"))
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        await self.app(scope, _replay(b"".join(chunks), receive), send)

    def _too_large(self, size: str) -> str:
        return f"body: {size} bytes is over the service's cap of {self.max_body_bytes} (caps.max_body_bytes)"


OPEN_PATHS = ("/", "/docs", "/openapi.json")
OPEN_PREFIXES = ("/static/", "/docs-assets/")


def _open(scope: Scope) -> bool:
    """The web page's shell and the API's documentation (``GET /``, ``/static/...``, ``/docs``, its assets,
    ``/openapi.json``) hold no data, and a browser cannot send a header when it navigates: the page and
    Swagger UI then send the token with every API call they make."""
    path = scope["path"]
    return scope.get("method") in ("GET", "HEAD") and (path in OPEN_PATHS or path.startswith(OPEN_PREFIXES))


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()  # after the body: the disconnect, when it comes

    return replay
