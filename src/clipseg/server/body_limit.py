"""Reading a request body up to a size and time limit before the app sees it (413 / 408 as JSON)."""

from __future__ import annotations

import asyncio
import json
import time

from .metrics import Metrics


class BodyLimitMiddleware:
    """Reads the request body up to `max_bytes` before the app sees it; beyond: 413 JSON.

    A declared Content-Length over the limit is refused at once; a streamed body is read
    (and counted) up to a bounded amount so the client gets the 413 rather than a reset.
    """

    def __init__(self, app, max_bytes: int, metrics: Metrics, timeout_s: float = 60.0):
        self.app, self.max_bytes, self.metrics, self.timeout_s = app, max_bytes, metrics, timeout_s

    async def _reject(self, send, size: str) -> None:
        await self._send_error(send, 413, "body_too_large",
                               f"request body {size} exceeds this server's limit of {self.max_bytes} bytes")

    async def _send_error(self, send, status: int, code: str, detail: str) -> None:
        self.metrics.inc("clipseg_requests_total", "HTTP requests by path and status.", path="/segment",
                         status=str(status))
        self.metrics.inc("clipseg_request_errors_total", "Requests answered with an error, by reason.", reason=code)
        body = json.dumps({"error": code, "detail": detail}).encode()
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                                (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None:
            try:
                n = int(declared)
            except ValueError:
                n = -1
            if n > self.max_bytes:
                return await self._reject(send, f"of {n} bytes")
        chunks, total = [], 0
        deadline = time.monotonic() + self.timeout_s
        while True:
            try:
                msg = await asyncio.wait_for(receive(), max(0.001, deadline - time.monotonic()))
            except asyncio.TimeoutError:
                return await self._send_error(send, 408, "body_timeout",
                                              f"the request body did not arrive within {self.timeout_s:g} s")
            if msg["type"] == "http.disconnect":
                return
            data = msg.get("body", b"")
            total += len(data)
            if total > self.max_bytes:
                drained = total
                while msg.get("more_body") and drained < 4 * self.max_bytes:  # let the client finish sending
                    msg = await receive()
                    drained += len(msg.get("body", b""))
                return await self._reject(send, f"of more than {self.max_bytes} bytes")
            chunks.append(data)
            if not msg.get("more_body"):
                break
        body, done = b"".join(chunks), False

        async def replay():
            nonlocal done
            if not done:
                done = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)
