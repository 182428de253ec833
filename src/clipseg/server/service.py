"""The work behind POST /segment: admission (a bounded queue), worker threads with one
Predictor each (sharing the model), the image-feature cache, and the answers (JSON or PNG),
made one full-size map at a time."""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import hashlib
import io
import json
import queue
import threading
import time
import warnings
from dataclasses import dataclass, field
from typing import Any

from fastapi.responses import Response
from PIL import Image

from ..io.image_io import load_image
from ..inference import Predictor
from ..inference.predictor import full_resolution_maps
from ..inference import naming
from ..inference import outputs as out
from ..prompts import VisualPrompt, describe
from ..prompts.assembly import HTTP_FIELDS, assemble
from ..prompts.text import unknown_words, unknown_words_warning
from .cache import FeatureCache
from .errors import ApiError
from .metrics import Metrics
from .settings import ServerSettings

OUTPUT_KINDS = ("rle", "mask_png", "prob_png")


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

    def __init__(self, model, settings: ServerSettings, tokenizer=None):
        self.model = model
        self.settings = settings
        self.metrics = Metrics()
        self.cache = FeatureCache(settings.cache_size)
        tokenizer = tokenizer or model.tokenizer  # one, shared by the workers' predictors
        self.predictors: queue.SimpleQueue[Predictor] = queue.SimpleQueue()
        for _ in range(settings.workers):
            self.predictors.put(Predictor(self.model, tokenizer, keep_aspect=settings.keep_aspect,
                                          warn_unknown_words=False))  # answered in the JSON's "unknown_words"
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
            predictor.set_image(cached)  # an ImageState: no backbone pass
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
            self.cache.put(sha, predictor.image_state)
        job.timing["image_ms"] = (time.perf_counter() - t0) * 1000
        return sha, cached is not None

    def _segment(self, predictor: Predictor, job: SegmentJob) -> Response:
        if job.prompts:
            predictor.prompt_encoder.tokenize(job.prompts)  # PromptError before paying for the image
        sha, was_cached = self._set_image(predictor, job)
        visuals = []
        if job.support is not None:
            self._check_pixels(job.support[0], "support_image")
            self._check_pixels(job.support[1], "support_mask")
            visuals.append(VisualPrompt(job.support[0], job.support[1]))
        prompts, keys_from = assemble(job.prompts, visuals, job.text_weight, HTTP_FIELDS)  # the CLI's rules and names
        names = [describe(p) for p in prompts]
        h, w = predictor.original_size
        self._check_output_size(len(prompts), h, w, job)
        t0 = time.perf_counter()
        maps = full_resolution_maps(predictor.predict_logits(prompts), (h, w))  # one (H, W) map at a time
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
            r: dict[str, Any] = out.mask_annotation(k, prob, name, m, segmentation="rle" in job.outputs)
            r["key"] = naming.prompt_key(keys_from[k], naming.prompt_identity(prompts[k]))  # the CLI's file-name key
            if "mask_png" in job.outputs:
                r["mask_png"] = base64.b64encode(out.png_bytes(out.mask_image(m))).decode()
            if "prob_png" in job.outputs:
                r["prob_png"] = base64.b64encode(out.png_bytes(out.prob_image16(prob))).decode()
            results.append(r)
            del prob, m
        job.timing["predict_ms"] = (time.perf_counter() - t0) * 1000
        unknown = unknown_words(predictor.tokenizer, job.prompts)
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
