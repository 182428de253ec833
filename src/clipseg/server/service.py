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
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from fastapi.responses import Response
from PIL import Image

from ..editing import MaskOptions, cutout, edit_map, find_regions, regions_record
from ..io.image_io import load_image
from ..inference import Predictor
from ..inference import naming
from ..inference import outputs as out
from ..prompts import VisualPrompt, describe
from ..prompts.assembly import HTTP_FIELDS, assemble
from ..prompts.expression import Expression, leaves as _leaves, plan_prompts, text_terms
from ..prompts.text import unknown_words, unknown_words_warning
from .cache import FeatureCache
from .errors import ApiError
from .metrics import Metrics
from .settings import ServerSettings

OUTPUT_KINDS = ("rle", "mask_png", "prob_png", "cutout_png", "regions")
IMAGE_OUTPUTS = ("mask_png", "prob_png", "cutout_png")  # base64 PNGs of the image's size, per prompt


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
    negative: tuple[str, ...] = ()
    editing: MaskOptions = field(default_factory=MaskOptions)
    region_padding: int = 16
    region_order: str = "area"
    refine: bool = False
    tiles: int | str | None = None
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

    def _set_image(self, predictor: Predictor, job: SegmentJob, needs_pixels: bool) -> tuple[str, bool]:
        """The job's image set on the predictor, from the feature cache when it holds it (with
        the crops a tiled request needs); the pixels too when `needs_pixels` (refinement,
        cut-outs), which the cache does not keep. Returns the sha256 and whether it was cached."""
        t0 = time.perf_counter()
        if job.image is not None:
            sha = hashlib.sha256(job.image).hexdigest()
            if job.image_sha256 and job.image_sha256.lower() != sha:
                raise ApiError(422, "sha256_mismatch", f"image_sha256 {job.image_sha256} does not match the "
                                                       f"uploaded image (sha256 {sha})")
        else:
            sha = job.image_sha256.lower()
        cached = self.cache.get(sha)
        usable = cached is not None and predictor.tiles_of(cached, job.tiles)
        if usable and not job.tiles:
            cached = replace(cached, tiles=None)  # a request without tiles uses the whole-image features only
        if usable and not needs_pixels:
            predictor.set_image(cached)  # no backbone pass
        elif job.image is None:
            if cached is None:
                raise ApiError(404, "image_not_cached", f"no image with sha256 {sha} in the cache (it may have been "
                                                        "evicted): send the image itself")
            needs = "refinement and cut-outs need the image's pixels" if needs_pixels else "these tiles need crops"
            raise ApiError(422, "image_needed", f"{needs}, which the cache does not keep: send the 'image' itself, "
                                                "not only its image_sha256")
        else:
            self._check_pixels(job.image, "image")
            pil = load_image(job.image, max_pixels=self.settings.max_pixels)
            if usable:  # features cached, pixels wanted
                predictor.set_image(replace(cached, rgb=np.asarray(pil.convert("RGB"))))
            else:
                predictor.set_image(pil, tiles=job.tiles)
                self.metrics.inc("clipseg_backbone_runs_total", "Backbone (image encoder) passes.")
                self.cache.put(sha, predictor.image_state.without_pixels())
        self.metrics.inc("clipseg_image_cache_hits_total" if usable else "clipseg_image_cache_misses_total",
                         "Requests whose image features came from the cache." if usable else
                         "Requests that ran the backbone on a new image.")
        job.timing["image_ms"] = (time.perf_counter() - t0) * 1000
        return sha, usable

    def _segment(self, predictor: Predictor, job: SegmentJob) -> Response:
        max_terms = self.settings.max_prompts
        terms = text_terms([*job.prompts, *job.negative])
        plan_prompts(job.prompts, negative=job.negative, max_terms=max_terms)  # ExpressionError: 422
        if terms:
            predictor.prompt_encoder.tokenize(terms)  # PromptError before paying for the image
        wants_image = "cutout_png" in job.outputs or (job.fmt == "png" and job.kind == "cutout")
        sha, was_cached = self._set_image(predictor, job, needs_pixels=wants_image or job.refine)
        visuals = []
        if job.support is not None:
            self._check_pixels(job.support[0], "support_image")
            self._check_pixels(job.support[1], "support_mask")
            visuals.append(VisualPrompt(job.support[0], job.support[1]))
        prompts, keys_from = assemble(job.prompts, visuals, job.text_weight, HTTP_FIELDS)  # the CLI's rules and names
        plan = plan_prompts(prompts, keys_from, job.negative, max_terms=max_terms)
        names = [plan.names[k] if isinstance(node, Expression) else describe(node) for k, node in enumerate(plan.outputs)]
        h, w = predictor.original_size
        self._check_output_size(len(prompts), h, w, job)
        job.editing.check_size(h, w)  # MaskOptionsError: 422
        rgb = predictor.image_state.rgb
        t0 = time.perf_counter()
        maps = predictor.maps(plan, refine=job.refine, threshold=job.threshold)  # one (H, W) map at a time
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
            elif job.kind == "cutout":
                img = cutout(rgb, edit_map(next(maps), job.threshold, job.editing))
            else:
                img = Image.fromarray(edit_map(next(maps), job.threshold, job.editing).matte8(), "L")
            job.timing["predict_ms"] = (time.perf_counter() - t0) * 1000
            return Response(out.png_bytes(img), media_type="image/png", headers=headers)
        results = []
        for k, name in enumerate(names):
            prob = next(maps)  # not zip(maps, ...): its reused tuple would keep the previous map alive
            edited = edit_map(prob, job.threshold, job.editing)
            r: dict[str, Any] = out.mask_annotation(k, prob, name, edited.mask, segmentation="rle" in job.outputs)
            r["present"] = edited.present
            r["key"] = naming.prompt_key(plan.names[k], naming.prompt_identity(plan.outputs[k]))  # the CLI's file-name key
            if "mask_png" in job.outputs:
                r["mask_png"] = base64.b64encode(out.png_bytes(Image.fromarray(edited.matte8(), "L"))).decode()
            if "prob_png" in job.outputs:
                r["prob_png"] = base64.b64encode(out.png_bytes(out.prob_image16(prob))).decode()
            if "cutout_png" in job.outputs:
                r["cutout_png"] = base64.b64encode(out.png_bytes(cutout(rgb, edited))).decode()
            if "regions" in job.outputs:
                found = find_regions(edited.mask, job.region_padding, job.region_order)
                r["regions"] = regions_record(found, h, w, job.region_padding, job.region_order)
            results.append(r)
            del prob, edited
        job.timing["predict_ms"] = (time.perf_counter() - t0) * 1000
        unknown = unknown_words(predictor.tokenizer, terms)
        for r, node in zip(results, plan.outputs):
            words = [w for p in _leaves(node) if isinstance(p, str) for w in unknown.get(p, [])]
            if words:
                r["unknown_words"] = list(dict.fromkeys(words))
        body = {
            "request_id": job.request_id,
            "warnings": [text] if (text := unknown_words_warning(unknown)) else [],
            "image": {"sha256": sha, "width": w, "height": h, "cached": was_cached},
            "threshold": job.threshold,
            "text_weight": job.text_weight,
            "negative": list(job.negative),
            "editing": job.editing.record(),
            "refine": job.refine,
            "tiles": job.tiles,
            "results": results,
            "timing_ms": {k: round(v, 2) for k, v in job.timing.items()},
        }
        return Response(json.dumps(body), media_type="application/json", headers=headers)

    def _check_output_size(self, n: int, h: int, w: int, job: SegmentJob) -> None:
        """413 before any map is made if the response would carry more image pixels than allowed."""
        images = n * len(set(IMAGE_OUTPUTS) & set(job.outputs)) if job.fmt == "json" else 1
        if job.fmt == "json" and not images:
            return  # statistics and RLE only: small
        limit = self.settings.max_output_pixels
        if images * h * w > limit:
            raise ApiError(413, "output_too_large",
                           f"{images} map(s) of {w}x{h} = {images * h * w / 1e6:.0f} Mpx of PNG output, above this "
                           f"server's limit of {limit / 1e6:.0f} Mpx per request; ask for fewer prompts, RLE "
                           "(outputs=rle) or a smaller image")

    def shutdown(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)
