"""The HTTP service: FastAPI app around a Predictor, with limits, a queue, a cache and metrics.

    POST /segment       multipart: image (or image_sha256 of an image sent before), prompt (repeatable),
                        support_image + support_mask (visual prompt), text_weight (mix the visual prompt
                        into each text prompt), threshold, outputs, format, kind
    GET  /health        liveness + queue and cache state
    GET  /metrics       Prometheus text format
    GET  /info          the loaded model and the limits
    GET  /              the web page (static/index.html); /openapi.json, /docs

Errors are JSON `{"error": CODE, "detail": MESSAGE}` with a 4xx status for bad input
(400 bad image, 404 image_sha256 not cached, 413 too large, 422 bad prompt/fields),
503 + Retry-After when the queue is full or a request waited too long, 504 when
inference took longer than the timeout, 500 for anything unexpected; in every case the
process keeps serving.
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import hashlib
import io
import json
import queue
import re
import threading
import time
import warnings
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import FastAPI, File, Form, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse, Response
from fastapi.staticfiles import StaticFiles
from PIL import Image
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..inference import outputs as out
from ..data.image_io import ImageError, load_image
from ..inference import Predictor
from ..inference.masks import DEFAULT_THRESHOLD
from ..prompts import MixedPrompt, PromptError, VisualPrompt, describe
from ..prompts.text import unknown_words, unknown_words_warning
from .cache import FeatureCache
from .metrics import Metrics
from .settings import ServerSettings

STATIC_DIR = Path(__file__).parent / "static"
OUTPUT_KINDS = ("rle", "mask_png", "prob_png")
REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
KNOWN_PATHS = ("/segment", "/health", "/metrics", "/info", "/", "/openapi.json")


class ApiError(Exception):
    """Answered as JSON {"error": code, "detail": detail} with the given status."""

    def __init__(self, status: int, code: str, detail: str, headers: dict[str, str] | None = None):
        super().__init__(detail)
        self.status, self.code, self.detail, self.headers = status, code, detail, headers or {}


def error_response(status: int, code: str, detail: str, headers: dict[str, str] | None = None, **extra) -> JSONResponse:
    return JSONResponse({"error": code, "detail": detail, **extra}, status_code=status, headers=headers)


@dataclass
class SegmentJob:
    image: bytes | None
    image_sha256: str | None
    prompts: list[str]
    support: tuple[bytes, bytes] | None
    text_weight: float | None  # set: each text prompt is mixed with the support (no separate visual result)
    threshold: float
    none_threshold: float | None
    outputs: tuple[str, ...]
    fmt: str
    kind: str
    request_id: str | None
    timing: dict[str, float] = field(default_factory=dict)


class InferenceService:
    """Admission control, worker threads (one Predictor each, sharing the model) and the feature cache."""

    def __init__(self, loaded, settings: ServerSettings, tokenizer=None):
        self.loaded = loaded
        self.model = loaded.model
        self.settings = settings
        self.metrics = Metrics()
        self.cache = FeatureCache(settings.cache_size)
        if tokenizer is None:
            from ..tokenizer import CLIPTokenizer

            tokenizer = CLIPTokenizer()  # one, shared by the workers' predictors
        self.predictors: queue.SimpleQueue[Predictor] = queue.SimpleQueue()
        for _ in range(settings.workers):
            self.predictors.put(Predictor(self.model, tokenizer, keep_aspect=settings.keep_aspect))
        self.executor = concurrent.futures.ThreadPoolExecutor(settings.workers, thread_name_prefix="clipseg-infer")
        self._lock = threading.Lock()
        self.pending = 0  # admitted and not finished: waiting + running
        self.running = 0
        self.started = time.time()
        m = self.metrics
        m.declare("clipseg_image_cache_hits_total", "Requests whose image features came from the cache.")
        m.declare("clipseg_image_cache_misses_total", "Requests that ran the backbone on a new image.")
        m.declare("clipseg_backbone_runs_total", "Backbone (image encoder) passes.")
        m.declare("clipseg_rejected_total", "Requests refused because the queue was full.", reason="queue_full")
        m.gauge("clipseg_queue_waiting", "Admitted requests waiting for a worker.", lambda: self.pending - self.running)
        m.gauge("clipseg_inflight", "Requests being computed.", lambda: self.running)
        m.gauge("clipseg_queue_capacity", "Requests admitted at most (workers + max_queue).", lambda: self.capacity)
        m.gauge("clipseg_image_cache_entries", "Images in the feature cache.", lambda: len(self.cache))
        m.gauge("clipseg_uptime_seconds", "Seconds since start.", lambda: time.time() - self.started)

    @property
    def capacity(self) -> int:
        return self.settings.workers + self.settings.max_queue

    # -------------------------------------------------------------- admission

    def _admit(self) -> bool:
        with self._lock:
            if self.pending >= self.capacity:
                return False
            self.pending += 1
            return True

    def _release(self, _fut=None) -> None:
        with self._lock:
            self.pending -= 1

    async def submit(self, job: SegmentJob) -> Response:
        if not self._admit():
            self.metrics.inc("clipseg_rejected_total", "Requests refused because the queue was full.", reason="queue_full")
            raise ApiError(503, "queue_full",
                           f"server busy: {self.capacity} requests already in progress or queued; retry later",
                           {"Retry-After": str(self.settings.retry_after_s)})
        try:
            cfut = self.executor.submit(self._run, job)
        except RuntimeError:  # executor shut down
            self._release()
            raise ApiError(503, "shutting_down", "the server is shutting down") from None
        cfut.add_done_callback(self._release)
        timeout = self.settings.request_timeout_s
        try:
            return await asyncio.wait_for(asyncio.shield(asyncio.wrap_future(cfut)), timeout)
        except asyncio.TimeoutError:
            if cfut.cancel():
                self.metrics.inc("clipseg_timeouts_total", "Requests over the time limit.", stage="queue")
                raise ApiError(503, "queue_timeout", f"waited more than {timeout:g} s for a free worker; retry later",
                               {"Retry-After": str(self.settings.retry_after_s)}) from None
            self.metrics.inc("clipseg_timeouts_total", "Requests over the time limit.", stage="inference")
            raise ApiError(504, "timeout", f"inference took longer than the {timeout:g} s limit") from None

    # -------------------------------------------------------------- work (in a worker thread)

    def _run(self, job: SegmentJob) -> Response:
        with self._lock:
            self.running += 1
        predictor = self.predictors.get()
        try:
            return self._segment(predictor, job)
        finally:
            predictor.reset_image()
            self.predictors.put(predictor)
            with self._lock:
                self.running -= 1

    def _check_pixels(self, data: bytes, what: str) -> None:
        limit = self.settings.max_pixels
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                with Image.open(io.BytesIO(data)) as im:
                    w, h = im.size
        except Image.DecompressionBombError as e:
            raise ApiError(413, "image_too_large", f"{what} is too large to decode safely: {e}") from None
        except Exception:
            return  # unreadable: load_image says why
        if w * h > limit:
            raise ApiError(413, "image_too_large", f"{what} is {w}x{h} = {w * h / 1e6:.1f} Mpx, above this "
                                                   f"server's limit of {limit / 1e6:.1f} Mpx")

    def _set_image(self, predictor: Predictor, job: SegmentJob) -> tuple[str, bool]:
        t0 = time.perf_counter()
        if job.image is not None:
            sha = hashlib.sha256(job.image).hexdigest()
            if job.image_sha256 and job.image_sha256.lower() != sha:
                raise ApiError(422, "sha256_mismatch", f"image_sha256 {job.image_sha256} does not match the "
                                                       f"uploaded image (sha256 {sha})")
        else:
            sha = job.image_sha256.lower()
        cached = self.cache.get(sha)
        if cached is not None:
            predictor.set_features(*cached)
            self.metrics.inc("clipseg_image_cache_hits_total", "Requests whose image features came from the cache.")
        else:
            if job.image is None:
                raise ApiError(404, "image_not_cached", f"no image with sha256 {sha} in the cache (it may have been "
                                                        "evicted): send the image itself")
            self.metrics.inc("clipseg_image_cache_misses_total", "Requests that ran the backbone on a new image.")
            self._check_pixels(job.image, "image")
            pil = load_image(job.image, max_pixels=self.settings.max_pixels)
            predictor.set_image(pil)
            self.metrics.inc("clipseg_backbone_runs_total", "Backbone (image encoder) passes.")
            self.cache.put(sha, (predictor.features, predictor.original_size))
        job.timing["image_ms"] = (time.perf_counter() - t0) * 1000
        return sha, cached is not None

    def _segment(self, predictor: Predictor, job: SegmentJob) -> Response:
        if job.prompts:
            predictor.prompt_encoder.tokenize(job.prompts)  # PromptError before paying for the image
        sha, was_cached = self._set_image(predictor, job)
        prompts: list = list(job.prompts)
        if job.support is not None:
            self._check_pixels(job.support[0], "support_image")
            self._check_pixels(job.support[1], "support_mask")
            visual = VisualPrompt(job.support[0], job.support[1])
            if job.text_weight is None:
                prompts.append(visual)
            else:
                prompts = [MixedPrompt(t, visual, job.text_weight) for t in job.prompts]
        names = [describe(p) for p in prompts]
        h, w = predictor.original_size
        self._check_output_size(len(prompts), h, w, job)
        t0 = time.perf_counter()
        maps = predictor.predict_iter(prompts)  # one (H, W) map at a time: memory stays one map
        headers = {"X-Image-SHA256": sha, "X-Cache": "hit" if was_cached else "miss"}
        if job.request_id:
            headers["X-Request-Id"] = job.request_id
        if job.fmt == "png":
            if job.kind == "labels":
                nt = job.threshold if job.none_threshold is None else job.none_threshold
                best = out.RunningBest((h, w))
                for prob in maps:
                    best.add(prob)
                img = out.label_image(best.labels(nt))
            elif job.kind == "prob":
                img = out.prob_image16(next(maps))
            else:
                img = out.mask_image(next(maps) >= job.threshold)
            job.timing["predict_ms"] = (time.perf_counter() - t0) * 1000
            return Response(out.png_bytes(img), media_type="image/png", headers=headers)
        results = []
        for k, name in enumerate(names):
            prob = next(maps)  # not zip(maps, ...): its reused tuple would keep the previous map alive
            m = prob >= job.threshold
            r: dict[str, Any] = {
                "index": k,
                "prompt": name,
                "area": int(m.sum()),
                "area_fraction": float(m.mean()),
                "score": float(prob.max()),
                "mean_probability": float(prob.mean()),
                "bbox": out.rle_mod.bbox(m),
            }
            if "rle" in job.outputs:
                r["segmentation"] = out.rle_mod.encode(m)
            if "mask_png" in job.outputs:
                r["mask_png"] = base64.b64encode(out.png_bytes(out.mask_image(m))).decode()
            if "prob_png" in job.outputs:
                r["prob_png"] = base64.b64encode(out.png_bytes(out.prob_image16(prob))).decode()
            results.append(r)
            del prob, m
        job.timing["predict_ms"] = (time.perf_counter() - t0) * 1000
        unknown = unknown_words(predictor.prompt_encoder.tokenizer, job.prompts)
        for r in results:
            if r["prompt"] in unknown:
                r["unknown_words"] = unknown[r["prompt"]]
        body = {
            "request_id": job.request_id,
            "warnings": [text] if (text := unknown_words_warning(unknown)) else [],
            "image": {"sha256": sha, "width": w, "height": h, "cached": was_cached},
            "threshold": job.threshold,
            "text_weight": job.text_weight,
            "results": results,
            "timing_ms": {k: round(v, 2) for k, v in job.timing.items()},
        }
        return Response(json.dumps(body), media_type="application/json", headers=headers)

    def _check_output_size(self, n: int, h: int, w: int, job: SegmentJob) -> None:
        """413 before any map is made if the response would carry more image pixels than allowed."""
        images = n if job.fmt == "json" else 1
        if job.fmt == "json" and not {"mask_png", "prob_png"} & set(job.outputs):
            return  # statistics and RLE only: small
        limit = self.settings.max_output_pixels
        if images * h * w > limit:
            raise ApiError(413, "output_too_large",
                           f"{images} map(s) of {w}x{h} = {images * h * w / 1e6:.0f} Mpx of PNG output, above this "
                           f"server's limit of {limit / 1e6:.0f} Mpx per request; ask for fewer prompts, RLE "
                           "(outputs=rle) or a smaller image")

    def shutdown(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)


# ------------------------------------------------------------------ middleware


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


# ------------------------------------------------------------------ app


def _parse_prompts(prompt: list[str] | None, prompts: str | None) -> list[str]:
    texts = list(prompt or [])
    if prompts is not None and prompts != "":
        try:
            extra = json.loads(prompts)
        except json.JSONDecodeError:
            extra = [ln for ln in prompts.splitlines()]
        if isinstance(extra, str):
            extra = [extra]
        if not isinstance(extra, list) or not all(isinstance(p, str) for p in extra):
            raise ApiError(422, "bad_prompt", "'prompts' must be a JSON array of strings or one prompt per line")
        texts += extra
    return texts


def create_app(loaded, settings: ServerSettings | None = None, tokenizer=None) -> FastAPI:
    """The FastAPI app for a loaded model (`clipseg.inference.loading.LoadedModel`, or a bare CLIPSeg)."""
    if not hasattr(loaded, "describe"):
        from ..inference.loading import LoadedModel

        loaded = LoadedModel(loaded, "<model object>", "in-process", next(loaded.parameters()).device)
    settings = settings or ServerSettings()
    service = InferenceService(loaded, settings, tokenizer)

    @asynccontextmanager
    async def lifespan(app):
        yield
        service.shutdown()

    app = FastAPI(
        title="CLIPSeg",
        version=_version(),
        description="Image segmentation by text and visual prompts (CLIPSeg, Lüddecke & Ecker, CVPR 2022). "
                    "Errors are JSON {error, detail}.",
        lifespan=lifespan,
    )
    app.state.service = service
    metrics = service.metrics

    @app.middleware("http")
    async def record(request: Request, call_next):
        t0 = time.perf_counter()
        path = request.url.path
        label = path if path in KNOWN_PATHS else ("/static" if path.startswith("/static/") else "other")
        try:
            response = await call_next(request)
        except Exception:
            metrics.inc("clipseg_requests_total", "HTTP requests by path and status.", path=label, status="500")
            raise
        metrics.inc("clipseg_requests_total", "HTTP requests by path and status.", path=label, status=str(response.status_code))
        metrics.observe(time.perf_counter() - t0, path=label)
        return response

    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes, metrics=metrics,
                       timeout_s=settings.request_timeout_s)

    def _error(status: int, code: str, detail: str, headers=None, **extra) -> JSONResponse:
        metrics.inc("clipseg_request_errors_total", "Requests answered with an error, by reason.", reason=code)
        return error_response(status, code, detail, headers, **extra)

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError):
        return _error(exc.status, exc.code, exc.detail, exc.headers)

    @app.exception_handler(ImageError)
    async def _image_error(request: Request, exc: ImageError):
        return _error(400, "bad_image", str(exc))

    @app.exception_handler(PromptError)
    async def _prompt_error(request: Request, exc: PromptError):
        return _error(422, "bad_prompt", str(exc))

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError):
        errs = exc.errors()
        parts = []
        for e in errs:
            loc = ".".join(str(x) for x in e.get("loc", ()) if x not in ("body", "query"))
            parts.append(f"{loc}: {e.get('msg')}" if loc else str(e.get("msg")))
        return _error(422, "invalid_request", "; ".join(parts) or "invalid request",
                      errors=json.loads(json.dumps(errs, default=str)))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException):
        code = {404: "not_found", 405: "method_not_allowed", 400: "bad_request"}.get(exc.status_code, "http_error")
        return _error(exc.status_code, code, str(exc.detail), getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception):
        return _error(500, "internal_error", f"{type(exc).__name__}: {str(exc)[:300]}")

    @app.post(
        "/segment",
        summary="Segment an image by text prompts and/or a visual prompt",
        responses={
            200: {"description": "JSON results (format=json) or one PNG (format=png)",
                  "content": {"application/json": {}, "image/png": {}}},
            400: {"description": "bad image"}, 404: {"description": "image_sha256 not in the cache"},
            413: {"description": "body or image too large"}, 415: {"description": "not multipart/form-data"},
            422: {"description": "bad prompt or fields"},
            503: {"description": "queue full / waited too long (Retry-After)"}, 504: {"description": "timeout"},
        },
    )
    async def segment(
        request: Request,
        image: Annotated[UploadFile | None, File(description="the image (any format Pillow reads)")] = None,
        image_sha256: Annotated[str | None, Form(description="sha256 of an image sent before: reuses its cached "
                                                             "features without uploading it again")] = None,
        prompt: Annotated[list[str] | None, Form(description="a text prompt; repeat the field for several")] = None,
        prompts: Annotated[str | None, Form(description="alternatively: a JSON array of prompts, "
                                                        "or one per line")] = None,
        support_image: Annotated[UploadFile | None, File(description="visual prompt: example image")] = None,
        support_mask: Annotated[UploadFile | None, File(description="visual prompt: mask of the example "
                                                                    "(nonzero / opaque = object)")] = None,
        text_weight: Annotated[float | None, Form(ge=0.0, le=1.0, description="with a visual prompt and text "
                                                                         "prompts: condition on text_weight * text + "
                                                                         "(1 - text_weight) * visual, one result per "
                                                                         "text prompt")] = None,
        threshold: Annotated[float, Form(ge=0.0, le=1.0, description="mask threshold")] = DEFAULT_THRESHOLD,
        none_threshold: Annotated[float | None, Form(ge=0.0, le=1.0, description="label maps: 'none' below "
                                                                                 "this (default threshold)")] = None,
        outputs: Annotated[str, Form(description="JSON format: comma-separated of rle, mask_png, prob_png "
                                                 "(base64 PNGs; prob_png is 16-bit)")] = "rle",
        format: Annotated[Literal["json", "png"], Form(description="json: all prompts; png: one image")] = "json",
        kind: Annotated[Literal["mask", "prob", "labels"], Form(description="format=png: mask or prob (one "
                                                                             "prompt) or labels (palette PNG)")] = "mask",
        request_id: Annotated[str | None, Form(description="echoed back in the body and the X-Request-Id "
                                                                     "header: 1-128 of A-Z a-z 0-9 . _ : -")] = None,
    ):
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype not in ("multipart/form-data", "application/x-www-form-urlencoded"):
            raise ApiError(415, "unsupported_media_type", f"send the image and prompts as multipart/form-data "
                                                          f"(got content-type '{ctype or 'none'}')")
        if request_id is not None and not REQUEST_ID.fullmatch(request_id):
            raise ApiError(422, "invalid_request", "request_id must be 1 to 128 characters of A-Z a-z 0-9 . _ : - "
                                                   "(it is echoed in the X-Request-Id header)")
        texts = _parse_prompts(prompt, prompts)
        for i, t in enumerate(texts):
            if len(t) > settings.max_prompt_chars:
                raise ApiError(422, "bad_prompt", f"text prompt #{i} is too long: {len(t)} characters, more than "
                                                  f"the {settings.max_prompt_chars} this server accepts")
        if (support_image is None) != (support_mask is None):
            raise ApiError(422, "bad_prompt", "a visual prompt needs both support_image and support_mask")
        n = len(texts) + (support_image is not None)
        if n == 0:
            raise ApiError(422, "bad_prompt", "no prompt: send at least one 'prompt' field or a support_image + "
                                              "support_mask")
        if text_weight is not None:
            if support_image is None:
                raise ApiError(422, "bad_prompt", "text_weight mixes a visual prompt into the text prompts: send "
                                                  "support_image + support_mask too")
            if not texts:
                raise ApiError(422, "bad_prompt", "text_weight mixes the visual prompt into text prompts: send at "
                                                  "least one 'prompt' field")
            n = len(texts)  # one mixed prompt per text
        if n > settings.max_prompts:
            raise ApiError(422, "too_many_prompts", f"{n} prompts, more than the {settings.max_prompts} allowed")
        wanted = tuple(o.strip() for o in outputs.split(",") if o.strip())
        unknown = [o for o in wanted if o not in OUTPUT_KINDS]
        if unknown:
            raise ApiError(422, "invalid_request", f"unknown outputs {unknown}; choose from {', '.join(OUTPUT_KINDS)}")
        if format == "png" and kind in ("mask", "prob") and n != 1:
            raise ApiError(422, "invalid_request", f"format=png with kind={kind} returns one prompt's map, got {n} "
                                                   "prompts (use kind=labels or format=json)")
        if image is None and not image_sha256:
            raise ApiError(422, "invalid_request", "send an 'image' file (or the image_sha256 of one sent before)")
        if image_sha256 is not None and image_sha256 != "":
            s = image_sha256.strip().lower()
            if len(s) != 64 or any(c not in "0123456789abcdef" for c in s):
                raise ApiError(422, "invalid_request", "image_sha256 must be 64 hex digits")
        data = await image.read() if image is not None else None
        support = None
        if support_image is not None:
            support = (await support_image.read(), await support_mask.read())
        job = SegmentJob(image=data, image_sha256=image_sha256 or None, prompts=texts, support=support,
                         text_weight=text_weight, threshold=threshold, none_threshold=none_threshold,
                         outputs=wanted or ("rle",), fmt=format, kind=kind, request_id=request_id)
        return await service.submit(job)

    @app.get("/health", summary="Liveness and queue/cache state")
    async def health():
        return {
            "status": "ok",
            "model": loaded.weights,
            "device": str(loaded.device),
            "queue": {"waiting": service.pending - service.running, "running": service.running,
                      "capacity": service.capacity},
            "cache": {"entries": len(service.cache), "capacity": service.cache.capacity},
            "uptime_s": round(time.time() - service.started, 1),
        }

    @app.get("/metrics", summary="Prometheus metrics", response_class=PlainTextResponse)
    async def metrics_endpoint():
        return PlainTextResponse(metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")

    @app.get("/info", summary="The loaded model and this server's limits")
    async def info():
        return {"model": loaded.describe(), "limits": settings.to_dict(), "outputs": list(OUTPUT_KINDS)}

    @app.get("/", include_in_schema=False)
    async def index():
        return FileResponse(STATIC_DIR / "index.html", media_type="text/html")

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app


def _version() -> str:
    try:
        from .. import __version__

        return __version__
    except ImportError:
        return "0"
