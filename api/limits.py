"""Request limits as ASGI middleware: body size (413) and requests per minute per client (429).

The body limit holds for every request, also chunked ones with no Content-Length: the body
is counted while it streams in and the request is cut off at the limit, so a 2 GB upload
never reaches an endpoint or the disk. The rate limit counts per signed-in user (the token's
subject; not verified here, the endpoint verifies it) or per client address, in a sliding
window of one minute.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict, deque
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import jwt

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


async def _reject(send: Send, status: int, detail: str, headers: list | None = None) -> None:
    body = json.dumps({"detail": detail, "error": "LimitExceeded"}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *(headers or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class BodySizeLimit:
    """Refuse bodies larger than ``max_bytes`` (Content-Length checked first, then counted)."""

    def __init__(self, app: ASGIApp, max_bytes: Callable[[], int]) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.max_bytes()
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await _reject(send, 413, f"request body larger than {limit / 1e6:.0f} MB")
            return
        seen = 0
        over = False

        async def counted() -> Message:
            # Past the limit the app gets an empty last chunk (nothing more is read) and its
            # answer is replaced by 413 below.
            nonlocal seen, over
            if over:
                return {"type": "http.request", "body": b"", "more_body": False}
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    over = True
                    return {"type": "http.request", "body": b"", "more_body": False}
            return message

        replaced = False

        async def answer(message: Message) -> None:
            nonlocal replaced
            if over:
                if not replaced:
                    replaced = True
                    await _reject(send, 413, f"request body larger than {limit / 1e6:.0f} MB")
                return
            await send(message)

        await self.app(scope, counted, answer)


class RateLimit:
    """At most ``per_minute`` requests per client in any sliding minute; static files free."""

    def __init__(self, app: ASGIApp, per_minute: Callable[[], int]) -> None:
        self.app = app
        self.per_minute = per_minute
        self.hits: dict[str, deque[float]] = defaultdict(deque)

    def _client(self, scope: Scope) -> str:
        headers = dict(scope.get("headers") or [])
        auth = headers.get(b"authorization", b"").decode("latin-1")
        token = auth[7:] if auth.lower().startswith("bearer ") else None
        if token is None:
            for part in headers.get(b"cookie", b"").decode("latin-1").split(";"):
                name, _, value = part.strip().partition("=")
                if name == "wangge_token":
                    token = value
        if token:
            try:
                sub = jwt.decode(token, options={"verify_signature": False}).get("sub")
                if sub:
                    return f"user:{sub}"
            except jwt.PyJWTError:
                pass
        client = scope.get("client") or ("?", 0)
        return f"addr:{client[0]}"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path", "").startswith("/static/"):
            await self.app(scope, receive, send)
            return
        limit = self.per_minute()
        if limit > 0:
            now = time.monotonic()
            q = self.hits[self._client(scope)]
            while q and now - q[0] > 60.0:
                q.popleft()
            if len(q) >= limit:
                wait = max(1, int(60 - (now - q[0])) + 1)
                await _reject(
                    send,
                    429,
                    f"more than {limit} requests in a minute; try again in {wait} s",
                    [(b"retry-after", str(wait).encode())],
                )
                return
            q.append(now)
        await self.app(scope, receive, send)
