"""Videos in `clipseg segment`: every frame is segmented as an image of its own and written
under `OUT/.../VIDEO.frames/frame-NNNNNN.KEY.*` (resumable frame by frame, as folder runs
are); `--video-out` adds a mask video per prompt (`VIDEO.KEY.mask.mp4`) made from the frames'
masks; `--temporal W` averages each prompt term's probabilities over the last W frames (on the
model's grid, before full-resolution maps are made), causally, so that a resumed run recomputes
the W - 1 frames before the first missing one and writes what an uninterrupted run writes.

Frames are decoded in a background thread while the model runs on batches of them.
"""

from __future__ import annotations

import functools
from collections import deque
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ..inference import naming
from ..io.video import VideoError, frames, prefetch, probe, write_mask_video


def frame_job(video, index: int):
    """The Job of frame `index` of a video Job (same fields as an image's)."""
    from .folder import Job

    return Job(video.source, video.folders + (naming.frames_folder(video.file_name),), f"frame-{index:06d}",
               f"{video.display}#{index}")


class TemporalWindow:
    """Causal mean of the last `width` frames' term probabilities, returned as logits."""

    def __init__(self, width: int):
        self.width = width
        self.past: deque[torch.Tensor] = deque(maxlen=max(1, width))

    def clear(self) -> None:
        self.past.clear()

    def __call__(self, logits: torch.Tensor) -> torch.Tensor:
        if self.width <= 1:
            return logits
        self.past.append(logits.float().sigmoid())
        mean = torch.stack(list(self.past)).mean(0)
        return torch.logit(mean.clamp(1e-6, 1 - 1e-6))


def run_video(seg, job, summary, bar, writer) -> None:
    """Segment every frame of the video `job` (see the module docstring). Frames already
    written are skipped; a video that cannot be read fails as one item, and a decoding error
    part-way fails the rest of it (the frames written before it stay valid)."""
    o = seg.options
    try:
        info = probe(Path(job.source), o.max_pixels)
    except VideoError as e:
        summary.total += 1
        summary.failed.append((job.display, str(e)))
        bar.update(1)
        return
    if info.frames and bar.total is not None:
        bar.total += info.frames - 1  # the video was counted as one item
        bar.refresh()
    width = o.temporal
    window = TemporalWindow(width)

    @functools.cache
    def needed(i: int) -> bool:  # asked up to W times per frame (the window looks ahead): its files checked once
        return o.overwrite or not all(p.exists() for p in seg.targets(frame_job(job, i)).values())

    batch: list[tuple[int, np.ndarray, torch.Tensor]] = []

    def flush() -> None:
        if not batch:
            return
        logits = seg.backend.batch_logits([x for _, _, x in batch], seg.cond)
        for (i, rgb, _), lg in zip(batch, logits):
            lg = window(lg)
            if needed(i):
                fj = frame_job(job, i)
                writer.submit(fj, functools.partial(seg.write_outputs, fj, seg.targets(fj), lg, rgb.shape[:2], rgb))
            else:  # decoded as context for the temporal window only
                summary.skipped += 1
                bar.update(1)
        batch.clear()

    count = 0
    try:
        for i, rgb in enumerate(prefetch(frames(Path(job.source)), depth=2 * o.batch_size)):
            count = i + 1
            summary.total += 1
            if not (needed(i) or any(needed(j) for j in range(i + 1, i + width))):
                flush()
                window.clear()  # a gap: the window starts again
                summary.skipped += 1
                bar.update(1)
                continue
            pixels = seg.backend.prepare(Image.fromarray(rgb))
            if batch and batch[0][2].shape != pixels.shape:
                flush()
            batch.append((i, rgb, pixels))
            if len(batch) >= o.batch_size:
                flush()
        flush()
    except VideoError as e:
        flush()
        summary.total += 1
        summary.failed.append((job.display, str(e)))
        bar.update(1)
        return
    if o.video_out and "mask" in o.outputs and count:
        writer.drain()  # every frame's mask is on disk before the videos are made
        _write_videos(seg, job, count, info.fps, summary)


def _write_videos(seg, job, count: int, fps: float, summary) -> None:
    folder = Path(seg.options.out_dir).joinpath(*job.folders)
    for k, key in enumerate(seg.keys):
        paths = [seg.targets(frame_job(job, i))[f"mask:{k}"] for i in range(count)]
        if not all(p.exists() for p in paths):
            summary.failed.append((job.display, f"no mask video for '{seg.names[k]}': some frames failed"))
            continue
        target = folder / naming.output_name(job.file_name, "mask-video", prompt=key)
        write_mask_video(target, (np.asarray(Image.open(p)) for p in paths), fps)
