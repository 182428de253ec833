"""The HTTP service: FastAPI app around a Predictor, with limits, a queue, a cache and metrics.

    POST /segment       multipart: image (or image_sha256 of an image sent before), prompt (repeatable;
                        expressions as 'a | b', 'a & b', 'a - b'), negative (repeatable),
                        support_image + support_mask (visual prompt), text_weight (mix the visual prompt
                        into each text prompt), threshold, mask editing (grow, feather, smooth, invert,
                        fill_holes, min_area), refine, tiles, region_padding, region_order, outputs,
                        format, kind
    GET  /health        liveness + queue and cache state
    GET  /metrics       Prometheus text format
    GET  /info          the loaded model and the limits
    GET  /examples      example images (the shipped photo and world scene) and prompts that fit them
    GET  /              the web page (static/index.html); /openapi.json, /docs and /redoc (served
                        from the fastapi-offline package's files: they work offline), /favicon.ico

Errors are JSON `{"error": CODE, "detail": MESSAGE}` with a 4xx status for bad input
(400 bad image, 404 image_sha256 not cached, 413 too large, 422 bad prompt/fields),
503 + Retry-After when the queue is full or a request waited too long, 504 when
inference took longer than the timeout, 500 for anything unexpected; in every case the
process keeps serving.

This module only translates HTTP: the work is `service.InferenceService`, the body limit
`body_limit.py`, the header deadline `protocol.py`, the error shape `errors.py`.
"""

from __future__ import annotations

import json
import re
import time
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Literal

from fastapi import FastAPI, File, Form, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..constants import PRESENCE_MIN_FRACTION
from ..editing import MaskOptions, MaskOptionsError
from ..io.files import parse_json
from ..io.image_io import ImageError
from ..prompts import PromptError
from ..prompts.assembly import HTTP_FIELDS, count_prompts
from .body_limit import BodyLimitMiddleware
from .errors import ApiError, error_response
from .service import OUTPUT_KINDS, InferenceService, SegmentJob
from .settings import ServerSettings

STATIC_DIR = Path(__file__).parent / "static"
REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
KNOWN_PATHS = ("/segment", "/health", "/metrics", "/info", "/", "/openapi.json", "/docs", "/redoc", "/examples")


def _parse_prompts(prompt: list[str] | None, prompts: str | None) -> list[str]:
    texts = list(prompt or [])
    if prompts is not None and prompts != "":
        stripped = prompts.lstrip()
        if stripped.startswith(("[", '"')):
            try:
                extra = parse_json(prompts, "'prompts'")
            except ValueError as e:  # malformed or nested too deeply: not a list of prompts
                raise ApiError(422, "bad_prompt", f"{e}; send a JSON array of strings or one prompt per line") from None
        else:
            extra = [ln for ln in prompts.splitlines()]
        if isinstance(extra, str):
            extra = [extra]
        if not isinstance(extra, list) or not all(isinstance(p, str) for p in extra):
            raise ApiError(422, "bad_prompt", "'prompts' must be a JSON array of strings or one prompt per line")
        texts += extra
    return texts


def create_app(model, settings: ServerSettings | None = None, tokenizer=None) -> FastAPI:
    """The FastAPI app for a model of `clipseg.load` (its own tokenizer and threshold unless
    `tokenizer` is given; a request's threshold defaults to the model's)."""
    settings = settings or ServerSettings()
    service = InferenceService(model, settings, tokenizer)

    @asynccontextmanager
    async def lifespan(app):
        yield
        service.shutdown()

    app = FastAPIOffline(  # /docs and /redoc from the fastapi-offline package's files: no CDN, works offline
        title="CLIPSeg",
        version=_version(),
        description="Image segmentation by text and visual prompts (CLIPSeg, Lüddecke & Ecker, CVPR 2022). "
                    "Errors are JSON {error, detail}.",
        lifespan=lifespan,
        favicon_url="/favicon.ico",
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

    @app.exception_handler(MaskOptionsError)
    async def _option_error(request: Request, exc: MaskOptionsError):
        return _error(422, "bad_option", str(exc))

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
        threshold: Annotated[float | None, Form(ge=0.0, le=1.0, description="mask threshold (default: the "
                                                                           "model's own, see /info)")] = None,
        none_threshold: Annotated[float | None, Form(ge=0.0, le=1.0, description="label maps: 'none' below "
                                                                                 "this (default threshold)")] = None,
        negative: Annotated[list[str] | None, Form(description="subtracted from every prompt: (prompt) - (n1 | n2 "
                                                               "...); repeat the field for several")] = None,
        grow: Annotated[float, Form(description="grow the masks by a disk of this many pixels of the image "
                                                "(negative: shrink)")] = 0.0,
        feather: Annotated[float, Form(description="soft mask edge of this many pixels (mask_png, cutout_png)")] = 0.0,
        smooth: Annotated[float, Form(description="Gaussian blur (standard deviation, px) of the probability map "
                                                  "before the threshold")] = 0.0,
        invert: Annotated[bool, Form(description="invert the masks")] = False,
        fill_holes: Annotated[bool, Form(description="fill the masks' holes")] = False,
        min_area: Annotated[int, Form(description="drop mask regions of fewer pixels")] = 0,
        refine: Annotated[bool, Form(description="edge-aware refinement: maps follow the image's edges (needs the "
                                                 "image itself, not only its image_sha256)")] = False,
        tiles: Annotated[str | None, Form(description="large images: also run overlapping crops, N along the longer "
                                                      "side (1-16) or 'auto'")] = None,
        region_padding: Annotated[int, Form(ge=0, description="outputs=regions: context around each crop box (px)")] = 16,
        region_order: Annotated[Literal["area", "left-to-right"], Form(description="outputs=regions: largest "
                                                                                   "first or left to right")] = "area",
        outputs: Annotated[str, Form(description="JSON format: comma-separated of rle, mask_png, prob_png, "
                                                 "cutout_png, regions (base64 PNGs; prob_png is 16-bit, cutout_png "
                                                 "RGBA; regions: boxes of the mask's parts)")] = "rle",
        format: Annotated[Literal["json", "png"], Form(description="json: all prompts; png: one image")] = "json",
        kind: Annotated[Literal["mask", "prob", "labels", "cutout"], Form(
            description="format=png: mask, prob or cutout (one prompt) or labels (palette PNG)")] = "mask",
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
        n = count_prompts(len(texts), int(support_image is not None), text_weight, HTTP_FIELDS)  # PromptError -> 422 bad_prompt
        if n > settings.max_prompts:
            raise ApiError(422, "too_many_prompts", f"{n} prompts, more than the {settings.max_prompts} allowed")
        wanted = tuple(o.strip() for o in outputs.split(",") if o.strip())
        unknown = [o for o in wanted if o not in OUTPUT_KINDS]
        if unknown:
            raise ApiError(422, "invalid_request", f"unknown outputs {unknown}; choose from {', '.join(OUTPUT_KINDS)}")
        negatives = tuple(negative or ())
        tile_spec: int | str | None = None
        if tiles not in (None, "", "off", "0"):
            if tiles != "auto" and not (tiles.isdigit() and 1 <= int(tiles) <= 16):
                raise ApiError(422, "invalid_request", f"tiles must be 'auto' or a whole number from 1 to 16, got "
                                                       f"{tiles[:20]!r}")
            tile_spec = "auto" if tiles == "auto" else int(tiles)
        editing = MaskOptions(smooth=smooth, fill_holes=fill_holes, min_area=min_area, grow=grow, invert=invert,
                              feather=feather)  # MaskOptionsError -> 422 bad_option
        if format == "png" and kind in ("mask", "prob", "cutout") and n != 1:
            raise ApiError(422, "invalid_request", f"format=png with kind={kind} returns one prompt's map, got {n} "
                                                   "prompts (use kind=labels or format=json)")
        if image is None and not image_sha256:
            raise ApiError(422, "invalid_request", "send an 'image' file (or the image_sha256 of one sent before)")
        if image_sha256 is not None and image_sha256 != "":
            image_sha256 = image_sha256.strip().lower()  # looked up as it is checked
            if len(image_sha256) != 64 or any(c not in "0123456789abcdef" for c in image_sha256):
                raise ApiError(422, "invalid_request", "image_sha256 must be 64 hex digits")
        data = await image.read() if image is not None else None
        support = None
        if support_image is not None:
            support = (await support_image.read(), await support_mask.read())
        job = SegmentJob(image=data, image_sha256=image_sha256 or None, prompts=texts, support=support,
                         text_weight=text_weight, threshold=model.threshold if threshold is None else threshold,
                         none_threshold=none_threshold,
                         outputs=wanted or ("rle",), fmt=format, kind=kind, request_id=request_id,
                         negative=negatives, editing=editing, region_padding=region_padding, region_order=region_order,
                         refine=refine, tiles=tile_spec)
        return await service.submit(job)

    @app.get("/health", summary="Liveness and queue/cache state")
    async def health():
        return {
            "status": "ok",
            "model": public_description(model)["weights"],
            "device": str(next(model.parameters()).device),
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
        return {"model": public_description(model), "limits": settings.to_dict(), "outputs": list(OUTPUT_KINDS),
                "presence_min_fraction": PRESENCE_MIN_FRACTION}  # the "not present" rule, for the page's re-thresholding

    examples = example_images(model)

    @app.get("/examples", summary="Example images and prompts that fit them")
    async def list_examples():
        return {"examples": [{k: v for k, v in e.items() if k != "path"} for e in examples.values()]}

    @app.get("/examples/{name}", include_in_schema=False)
    async def example_file(name: str):
        if name not in examples:
            raise ApiError(404, "not_found", f"no example image '{name}'")
        return FileResponse(examples[name]["path"])

    @app.get("/", include_in_schema=False)
    async def index():
        return FileResponse(STATIC_DIR / "index.html", media_type="text/html")

    @app.get("/favicon.ico", include_in_schema=False)
    async def favicon():
        return FileResponse(STATIC_DIR / "favicon.ico", media_type="image/x-icon")

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app


def public_description(model) -> dict:
    """What /info and the page show about the model: no absolute paths of the server's disk
    (a weights path is shown by its file name)."""
    from ..factory import describe

    d = describe(model)
    for key in ("weights", "source"):
        value = str(d.get(key, ""))
        if value.startswith(("/", "~")) or (len(value) > 2 and value[1] == ":") or _is_local_path(value):
            d[key] = Path(value).name
    for key in ("backbone_file", "files", "backbone_weights"):
        d.pop(key, None)
    if model.identity.fallback:
        d["note"] = "no real weights were available: this is the embedded world model (generated shapes only)"
    return d


def _is_local_path(value: str) -> bool:
    """A relative path on the server's disk (a hub name like CIDAS/x is not a local file or folder)."""
    try:
        return ("/" in value or "\\" in value or value.startswith(".")) and Path(value).exists()
    except (OSError, ValueError):
        return False


def example_images(model) -> dict[str, dict]:
    """The example images the page offers: the shipped CC0 photo and the generated world's scene,
    each with prompts that fit it; `suited` marks the one that fits the loaded model."""
    from ..weights.registry import ASSETS_DIR, WORLD_MODELS

    world = model.identity.weights in WORLD_MODELS.values()
    out: dict[str, dict] = {}
    photo = ASSETS_DIR / "photos" / "coffee.jpg"
    if photo.is_file():
        out["coffee.jpg"] = {"name": "coffee.jpg", "url": "/examples/coffee.jpg", "path": photo, "suited": not world,
                             "prompts": ["a cup of coffee", "a spoon", "a saucer"],
                             "credit": "Rachel Michetti / Pikolo Espresso Bar, CC0 (via scikit-image)"}
    scene = ASSETS_DIR / "world" / "example-scene.png"
    legend = ASSETS_DIR / "world" / "example.json"
    if scene.is_file() and legend.is_file():
        example = json.loads(legend.read_text())
        prompts = [p["text"] for p in example["prompts"] if "text" in p]
        out["world-scene.png"] = {"name": "world-scene.png", "url": "/examples/world-scene.png", "path": scene,
                                  "suited": world, "prompts": prompts, "credit": "a scene of clipseg's generated world"}
    return out


def _version() -> str:
    try:
        from ..constants import VERSION

        return VERSION
    except ImportError:
        return "0"
