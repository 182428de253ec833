"""The HTTP service and web page (FastAPI + uvicorn, the optional `server` extra).

    from clipseg.server import create_app, ServerSettings
    app = create_app(clipseg.load("CIDAS/clipseg-rd64-refined"), ServerSettings(max_queue=8))

or from the command line: `clipseg serve --port 8000`. FastAPI is imported only when
`create_app` is called, so the library works without it.
"""

from __future__ import annotations

from .settings import ServerSettings


def create_app(loaded, settings: ServerSettings | None = None, tokenizer=None):
    """FastAPI app around a loaded model; see `clipseg.server.app`."""
    from .app import create_app as _create

    return _create(loaded, settings, tokenizer)


def serve_in_thread(app, host: str = "127.0.0.1", port: int = 0, log_level: str = "warning"):
    """Context manager: run `app` with uvicorn in a background thread; yields the base URL."""
    from .runner import serve_in_thread as _serve

    return _serve(app, host, port, log_level)


__all__ = ["ServerSettings", "create_app", "serve_in_thread"]
