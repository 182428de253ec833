"""`clipseg segment`: one image, many images, or whole folders, by text and visual prompts.

Folder runs are recursive and resumable: an image whose outputs all exist is skipped
(outputs are written atomically, so an existing file is a complete one). A file that
cannot be read is reported and the run goes on; the summary at the end lists failures.
`prompts.json` records what the outputs mean (weights, threshold, each prompt's source);
resuming into a folder written with other settings is refused (`SettingsConflict`)
instead of mixing old and new results under the same file names.
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from ..data.image_io import ImageError, load_image
from ..inference import Predictor, label_map
from ..inference import outputs as out
from ..prompts import MixedPrompt, VisualPrompt

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pbm", ".jfif"}
OUTPUT_KINDS = ("prob", "mask", "overlay", "labels", "rle")


@dataclass
class SegmentOptions:
    out_dir: Path
    outputs: tuple[str, ...] = ("mask",)
    prob_format: str = "png"  # png (16-bit) | npy (float32)
    threshold: float = 0.5
    none_threshold: float | None = None  # label maps; default = threshold
    overwrite: bool = False
    recursive: bool = True
    progress: bool | None = None  # None = only on a terminal
    max_pixels: int | None = None
    model: str = ""  # what was loaded (recorded; a resumed run must use the same)
    keep_aspect: bool = False


class SettingsConflict(ValueError):
    """The output folder holds results of a run with other settings."""


@dataclass
class Job:
    source: Path
    key: Path  # output path without suffix, relative to out_dir
    display: str


@dataclass
class RunSummary:
    total: int = 0
    done: int = 0
    skipped: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failed

    def report(self) -> str:
        lines = [f"{self.total} image(s): {self.done} segmented, {self.skipped} skipped (outputs exist), "
                 f"{len(self.failed)} failed, in {self.seconds:.1f} s"]
        if self.failed:
            lines.append("failed:")
            lines.extend(f"  {name}: {reason}" for name, reason in self.failed)
        return "\n".join(lines)


def collect_jobs(inputs: Sequence[str | Path], out_dir: Path, recursive: bool = True) -> tuple[list[Job], list[tuple[str, str]]]:
    """Images to process (sorted, folders walked) and inputs that are missing."""
    jobs: list[Job] = []
    missing: list[tuple[str, str]] = []
    out_abs = Path(out_dir).resolve()
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            root = path.resolve()
            walker = root.rglob("*") if recursive else root.glob("*")
            files = []
            for f in walker:
                if not f.is_file() or f.suffix.lower() not in IMAGE_SUFFIXES:
                    continue
                if f.name.startswith(".") or out_abs == f.parent or out_abs in f.parents:
                    continue  # hidden/temporary files and our own outputs
                files.append(f)
            for f in sorted(files):
                rel = f.relative_to(root)
                jobs.append(Job(f, rel.with_suffix(""), str(Path(item) / rel)))
        elif path.exists():
            jobs.append(Job(path, Path(path.stem), str(item)))
        else:
            missing.append((str(item), "no such file or folder"))
    # Two inputs mapping to the same outputs (a.jpg and a.png): keep the extension in the name.
    seen: dict[Path, int] = {}
    for job in jobs:
        seen[job.key] = seen.get(job.key, 0) + 1
    for job in jobs:
        if seen[job.key] > 1:
            job.key = job.key.with_name(job.source.name)
    return jobs, missing


# Settings in prompts.json that change what existing output files mean.
RUN_SETTINGS = ("threshold", "none_threshold", "prob_format", "model", "keep_aspect")


def _file_digest(source) -> str:
    """sha256 (16 hex digits) of a file's, an array's or a bytes object's contents; '' for others (PIL images)."""
    if isinstance(source, (str, Path)):
        return hashlib.sha256(Path(source).read_bytes()).hexdigest()[:16]
    if isinstance(source, np.ndarray):
        return hashlib.sha256(np.ascontiguousarray(source).tobytes()).hexdigest()[:16]
    if isinstance(source, bytes):
        return hashlib.sha256(source).hexdigest()[:16]
    return ""


def prompt_source(prompt) -> str:
    """What a prompt was made from, comparable across runs: the text, the support files' sha256."""
    if isinstance(prompt, str):
        return f"text:{prompt}"
    if isinstance(prompt, VisualPrompt):
        return f"visual:{_file_digest(prompt.image)}/{_file_digest(prompt.mask)}"
    if isinstance(prompt, MixedPrompt):
        return f"mixed:{prompt.text_weight:g}:{prompt.text}|{prompt_source(prompt.visual)}"
    return "embedding"


class Segmenter:
    """Runs a fixed list of prompts (encoded once) over images and writes the chosen outputs."""

    def __init__(self, predictor: Predictor, prompts: Sequence, names: Sequence[str], options: SegmentOptions):
        if not prompts:
            raise ValueError("no prompts")
        self.predictor = predictor
        self.prompts = list(prompts)
        self.names = list(names)
        self.slugs = out.unique_slugs(self.names)
        self.options = options
        with torch.inference_mode():
            cond = predictor.prompt_encoder.encode(self.prompts)  # PromptError here, before any image
        self.cond = [c for c in cond]

    def targets(self, job: Job) -> dict[str, Path]:
        """Every output file of one image, by a name for the kind."""
        o = self.options
        base = Path(o.out_dir) / job.key
        name = base.name
        t: dict[str, Path] = {}
        for k, s in enumerate(self.slugs):
            if "prob" in o.outputs:
                t[f"prob:{k}"] = base.with_name(f"{name}.{s}.prob.{'npy' if o.prob_format == 'npy' else 'png'}")
            if "mask" in o.outputs:
                t[f"mask:{k}"] = base.with_name(f"{name}.{s}.mask.png")
        if "overlay" in o.outputs:
            t["overlay"] = base.with_name(f"{name}.overlay.png")
        if "labels" in o.outputs:
            t["labels"] = base.with_name(f"{name}.labels.png")
        if "rle" in o.outputs:
            t["rle"] = base.with_name(f"{name}.rle.json")
        return t

    def legend(self) -> dict:
        """What prompts.json records: the prompts, their files and the settings behind them."""
        o = self.options
        return {
            "prompts": [
                {"index": k, "label": k + 1, "prompt": n, "file_name": s, "colour": list(out.colour(k)),
                 "source": prompt_source(p),
                 **({"text_weight": p.text_weight} if isinstance(p, MixedPrompt) else {})}
                for k, (p, n, s) in enumerate(zip(self.prompts, self.names, self.slugs))
            ],
            "threshold": o.threshold,
            "none_threshold": o.threshold if o.none_threshold is None else o.none_threshold,
            "outputs": list(o.outputs),
            "prob_format": o.prob_format,
            "model": o.model,
            "keep_aspect": o.keep_aspect,
        }

    def check_resumable(self, legend: dict) -> None:
        """Raise SettingsConflict if existing outputs in out_dir were made with other settings."""
        o = self.options
        path = Path(o.out_dir) / "prompts.json"
        if o.overwrite or not path.exists():
            return
        try:
            old = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return  # unreadable legend: nothing to compare with (it is rewritten)
        changed = [f"{key} {old[key]!r} -> {legend[key]!r}" for key in RUN_SETTINGS
                   if key in old and old[key] != legend[key]]
        old_sources = {q.get("file_name"): q.get("source") for q in old.get("prompts", [])}
        changed += [f"prompt '{q['prompt']}' is not the one its files were made from"
                    for q in legend["prompts"]
                    if old_sources.get(q["file_name"], q["source"]) not in (None, q["source"])]
        if changed:
            raise SettingsConflict(
                f"'{o.out_dir}' holds outputs of a run with other settings ({'; '.join(changed)}); "
                "pass --overwrite to recompute them, or choose another output folder")

    def write_legend(self) -> None:
        legend = self.legend()
        self.check_resumable(legend)
        out.write_json(Path(self.options.out_dir) / "prompts.json", legend)

    def process(self, job: Job) -> bool:
        """Segment one image; False = skipped because its outputs exist."""
        o = self.options
        targets = self.targets(job)
        if not o.overwrite and all(p.exists() for p in targets.values()):
            return False
        image = load_image(job.source, **({"max_pixels": o.max_pixels} if o.max_pixels else {}))
        self.predictor.set_image(image)
        probs = self.predictor.predict(self.cond)  # (N, H, W)
        for k in range(len(self.cond)):
            if f"prob:{k}" in targets:
                if o.prob_format == "npy":
                    out.write_npy(targets[f"prob:{k}"], probs[k].astype(np.float32))
                else:
                    out.write_png(targets[f"prob:{k}"], out.prob_image16(probs[k]))
            if f"mask:{k}" in targets:
                out.write_png(targets[f"mask:{k}"], out.mask_image(probs[k] >= o.threshold))
        if "overlay" in targets:
            out.write_png(targets["overlay"], out.overlay_image(image, probs, threshold=o.threshold))
        if "labels" in targets:
            none_t = o.threshold if o.none_threshold is None else o.none_threshold
            out.write_png(targets["labels"], out.label_image(label_map(probs, none_t)))
        if "rle" in targets:
            out.write_json(targets["rle"], {
                "image": job.display,
                "height": int(probs.shape[1]),
                "width": int(probs.shape[2]),
                "threshold": o.threshold,
                "annotations": out.rle_annotations(probs, self.names, o.threshold),
            })
        self.predictor.reset_image()
        return True

    def run(self, inputs: Sequence[str | Path]) -> RunSummary:
        from tqdm import tqdm

        start = time.perf_counter()
        o = self.options
        jobs, missing = collect_jobs(inputs, Path(o.out_dir), o.recursive)
        summary = RunSummary(total=len(jobs) + len(missing), failed=list(missing))
        Path(o.out_dir).mkdir(parents=True, exist_ok=True)
        self.write_legend()
        bar = tqdm(jobs, desc="segment", unit="img", file=sys.stderr, disable=(not o.progress) if o.progress is not None else None,
                   dynamic_ncols=True)
        for job in bar:
            try:
                if self.process(job):
                    summary.done += 1
                else:
                    summary.skipped += 1
            except KeyboardInterrupt:
                raise
            except ImageError as e:
                summary.failed.append((job.display, str(e)))
            except MemoryError:
                summary.failed.append((job.display, "out of memory"))
            except Exception as e:  # keep going past anything a single file may cause
                summary.failed.append((job.display, f"{type(e).__name__}: {e}"))
            finally:
                self.predictor.reset_image()
            bar.set_postfix(failed=len(summary.failed), refresh=False)
        bar.close()
        summary.seconds = time.perf_counter() - start
        return summary

