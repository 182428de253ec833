"""Running the app with uvicorn in a background thread (tests, the load test, notebooks)."""

from __future__ import annotations

import logging
import socket
import threading
import time
from contextlib import contextmanager
from typing import Iterator


# Connections the kernel queues before uvicorn accepts them; beyond it clients get resets.
BACKLOG = 2048


def uvicorn_config(app, host: str = "127.0.0.1", port: int = 8000, log_level: str = "info", **kwargs):
    """The uvicorn configuration of the service: header deadline, keep-alive and backlog from
    the app's ServerSettings (`app.state.service.settings`)."""
    import uvicorn

    from .protocol import protocol_class

    settings = app.state.service.settings
    quiet_repeated_accept_errors()
    return uvicorn.Config(app, host=host, port=port, log_level=log_level, http=protocol_class(settings.header_timeout_s),
                          timeout_keep_alive=settings.keep_alive_s, backlog=BACKLOG,
                          limit_concurrency=settings.connection_limit(), **kwargs)


class RepeatFilter(logging.Filter):
    """Lets a message through at most once every `interval` seconds: when the process runs out
    of files, asyncio's accept loop logs the same error (with a traceback) on every try, and
    uvicorn logs every connection over its limit."""

    def __init__(self, interval: float = 10.0):
        super().__init__()
        self.interval, self.last, self.dropped = interval, {}, 0

    def filter(self, record: logging.LogRecord) -> bool:
        key = record.getMessage()[:120]
        now = time.monotonic()
        if now - self.last.get(key, -self.interval) < self.interval:
            self.dropped += 1
            return False
        self.last[key] = now
        return True


def quiet_repeated_accept_errors() -> RepeatFilter:
    """The RepeatFilter of the loggers that repeat one line per refused connection: asyncio's
    accept loop ("out of system resource") and uvicorn's "Exceeded concurrency limit" (one
    filter, added once per process)."""
    loggers = [logging.getLogger(name) for name in ("asyncio", "uvicorn.error")]
    for f in loggers[0].filters:
        if isinstance(f, RepeatFilter):
            return f
    f = RepeatFilter()
    for log in loggers:
        log.addFilter(f)
    return f


@contextmanager
def serve_in_thread(app, host: str = "127.0.0.1", port: int = 0, log_level: str = "warning",
                    start_timeout: float = 30.0) -> Iterator[str]:
    """Bind host:port (0 = a free port), serve `app` in a thread, yield 'http://host:port', stop on exit."""
    import uvicorn

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(BACKLOG)
    actual = sock.getsockname()[1]
    config = uvicorn_config(app, host, actual, log_level=log_level, lifespan="on", access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True, name="clipseg-uvicorn")
    thread.start()
    deadline = time.monotonic() + start_timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            sock.close()
            raise RuntimeError("the server did not start")
        time.sleep(0.02)
    url = f"http://[{host}]:{actual}" if family == socket.AF_INET6 else f"http://{host}:{actual}"
    try:
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
