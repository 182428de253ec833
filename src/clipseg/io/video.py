"""Video files: frames read in a background thread, mask videos written atomically (PyAV,
extra `video`). Every failure is a `VideoError` naming the file and what went wrong."""

from __future__ import annotations

import queue
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from .atomic import atomic_write
from .image_io import DEFAULT_MAX_PIXELS, ImageError

VIDEO_SUFFIXES = {".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv"}


class VideoError(ImageError):
    """A video that cannot be read or written (the message names the file and the reason)."""


def is_video_name(path: Path) -> bool:
    return path.suffix.lower() in VIDEO_SUFFIXES


def _av():
    try:
        import av
    except ImportError:
        raise VideoError("reading videos needs PyAV: pip install 'clipseg[video]'") from None
    return av


@dataclass(frozen=True)
class VideoInfo:
    width: int
    height: int
    fps: float
    frames: int | None  # as the container states it (None: not stated)
    codec: str


def probe(path: Path, max_pixels: int | None = None) -> VideoInfo:
    """The video's first stream, checked: it exists, its frames are not larger than max_pixels."""
    av = _av()
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise VideoError(f"{path.name}: no video stream")
            s = container.streams.video[0]
            w, h = s.codec_context.width, s.codec_context.height
            info = VideoInfo(w, h, float(s.average_rate or s.guessed_rate or 25), s.frames or None, s.codec_context.name)
    except VideoError:
        raise
    except (av.error.FFmpegError, OSError, ValueError) as e:
        raise VideoError(f"{path.name}: not a readable video ({type(e).__name__}: {str(e)[:200]})") from None
    limit = max_pixels or DEFAULT_MAX_PIXELS
    if w * h <= 0:
        raise VideoError(f"{path.name}: the video stream has no frame size")
    if w * h > limit:
        raise VideoError(f"{path.name}: frames of {w}x{h} = {w * h / 1e6:.1f} Mpx, above the limit of "
                         f"{limit / 1e6:.1f} Mpx (--max-pixels)")
    return info


def frames(path: Path) -> Iterator[np.ndarray]:
    """The frames as (H, W, 3) uint8 RGB arrays, in order. A decoding error raises VideoError
    saying which frame it reached (the frames before it were yielded)."""
    av = _av()
    index = 0
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            for frame in container.decode(stream):
                yield frame.to_ndarray(format="rgb24")
                index += 1
    except VideoError:
        raise
    except (av.error.FFmpegError, OSError, ValueError) as e:
        raise VideoError(f"{path.name}: decoding stopped at frame {index} ({type(e).__name__}: "
                         f"{str(e)[:200]})") from None
    if index == 0:
        raise VideoError(f"{path.name}: the video has no frames")


def prefetch(items: Iterable, depth: int = 8) -> Iterator:
    """`items` produced in a background thread, at most `depth` ahead (decoding while the
    model runs); its exceptions are raised here, in order."""
    q: queue.Queue = queue.Queue(maxsize=depth)
    done = object()
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                while not stop.is_set():
                    try:
                        q.put(("item", item), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            q.put(("done", done))
        except BaseException as e:  # handed to the consumer
            q.put(("error", e))

    thread = threading.Thread(target=produce, name="clipseg-video-decode", daemon=True)
    thread.start()
    try:
        while True:
            kind, value = q.get()
            if kind == "done":
                return
            if kind == "error":
                raise value
            yield value
    finally:
        stop.set()


def write_lossless_video(path: Path, images: Iterable[np.ndarray], fps: float) -> Path:
    """(H, W, 3) uint8 frames as a lossless QuickTime video (PNG-coded frames): decoding gives
    the same pixels back (test clips, frame-exact exchange)."""
    av = _av()
    from fractions import Fraction

    def write(f) -> None:
        with av.open(f, "w", format="mov") as out:
            stream = None
            for img in images:
                if stream is None:
                    stream = out.add_stream("png", rate=Fraction(fps).limit_denominator(1001))
                    stream.height, stream.width = img.shape[:2]
                    stream.pix_fmt = "rgb24"
                for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24")):
                    out.mux(packet)
            if stream is not None:
                for packet in stream.encode():
                    out.mux(packet)

    return atomic_write(path, write)


def write_mask_video(path: Path, masks: Iterable[np.ndarray], fps: float, codec: str = "libx264") -> Path:
    """A grey-scale video of (H, W) uint8 masks (H.264, yuv420p; odd sizes padded by one
    pixel), written to a temporary sibling and renamed: a killed run leaves no half video."""
    av = _av()
    from fractions import Fraction

    def write(f) -> None:
        with av.open(f, "w", format="mp4") as out:
            stream = None
            for m in masks:
                h, w = m.shape
                if stream is None:
                    stream = out.add_stream(codec, rate=Fraction(fps).limit_denominator(1001))
                    stream.width, stream.height, stream.pix_fmt = w + w % 2, h + h % 2, "yuv420p"
                    stream.options = {"crf": "12"} if codec == "libx264" else {}
                padded = np.pad(m, ((0, h % 2), (0, w % 2)), mode="edge")
                frame = av.VideoFrame.from_ndarray(np.repeat(padded[..., None], 3, axis=2), format="rgb24")
                for packet in stream.encode(frame):
                    out.mux(packet)
            if stream is not None:
                for packet in stream.encode():
                    out.mux(packet)

    return atomic_write(path, write)

