"""Limits and sizes of the HTTP service (no web framework imported here)."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass
class ServerSettings:
    max_body_bytes: int = 20 * 1024 * 1024  # whole request body; above it: 413
    max_pixels: int = 40_000_000  # width*height of any uploaded image; above it: 413
    max_prompts: int = 32  # prompts per request; above it: 422
    max_prompt_chars: int = 300  # longer text is refused before tokenizing (422); CLIP reads 75 tokens
    max_output_pixels: int = 200_000_000  # PNG maps per request (prompts x width x height); above it: 413
    header_timeout_s: float = 10.0  # a connection must send complete request headers within this
    keep_alive_s: float = 5.0  # idle keep-alive connections are closed after this
    workers: int = 1  # requests computed at once (inference threads, one Predictor each)
    max_queue: int = 16  # admitted requests waiting for a worker; beyond: 503 + Retry-After
    request_timeout_s: float = 60.0  # waiting + computing; queued too long: 503, computing too long: 504
    cache_size: int = 32  # images whose backbone features are kept (LRU by sha256 of the bytes)
    keep_aspect: bool = False
    retry_after_s: int = 1
    max_connections: int | None = None  # open connections at once; beyond: 503 and closed (None: from the
    #                                     process's open-file limit, 64 files kept spare, at most 1000)

    def connection_limit(self) -> int:
        """max_connections, or what the open-file limit allows: slow clients cannot use up the
        process's files (the accept loop would fail for everyone)."""
        if self.max_connections is not None:
            return self.max_connections
        try:
            import resource

            soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        except (ImportError, OSError, ValueError):
            return 1000
        return max(16, min(1000, soft - 64)) if soft != getattr(resource, "RLIM_INFINITY", -1) else 1000

    def to_dict(self) -> dict:
        return asdict(self)
