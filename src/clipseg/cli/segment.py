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
from ..inference import Predictor
from ..data.atomic import remove_stale_temporaries
from ..inference import naming
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
    folders: tuple[str, ...]  # output folders below out_dir (naming.folder_component applied)
    file_name: str  # the input's file name, extension included (or made unique, see naming.root_labels)
    display: str


@dataclass
class RunSummary:
    total: int = 0
    done: int = 0
    skipped: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0
    stale_removed: int = 0  # temporaries of killed earlier runs, deleted

    @property
    def ok(self) -> bool:
        return not self.failed

    def report(self) -> str:
        lines = [f"{self.total} image(s): {self.done} segmented, {self.skipped} skipped (outputs exist), "
                 f"{len(self.failed)} failed, in {self.seconds:.1f} s"]
        if self.stale_removed:
            lines.append(f"removed {self.stale_removed} temporary file(s) left by an interrupted run")
        if self.failed:
            lines.append("failed:")
            lines.extend(f"  {name}: {reason}" for name, reason in self.failed)
        return "\n".join(lines)


def _is_image_name(f: Path) -> bool:
    return f.suffix.lower() in IMAGE_SUFFIXES and not f.name.startswith(".")


def _walk(root: Path, out_abs: Path, recursive: bool) -> list[Path]:
    files = []
    for f in (root.rglob("*") if recursive else root.glob("*")):
        if not _is_image_name(f) or not f.is_file():
            continue
        if out_abs == f.parent or out_abs in f.parents:
            continue  # our own outputs
        files.append(f)
    return sorted(files)


def collect_jobs(inputs: Sequence[str | Path], out_dir: Path, recursive: bool = True) -> tuple[list[Job], list[tuple[str, str]]]:
    """Images to process (sorted, folders walked) and inputs that are missing.

    Output locations are injective (see `inference.naming`): one input (file or folder)
    maps to the top of out_dir; several inputs each get a top-level name of their own.
    A file given twice (or reached through two inputs) is one job.
    """
    missing: list[tuple[str, str]] = []
    out_abs = Path(out_dir).resolve()
    items: list[tuple[str, Path]] = []  # (as given, resolved)
    for item in inputs:
        path = Path(item)
        if path.is_dir() or path.is_file():
            items.append((str(item), path.resolve()))
        elif path.exists():
            missing.append((str(item), "not a regular file or folder"))
        else:
            missing.append((str(item), "no such file or folder"))
    labels = naming.root_labels([(p.name or "root", str(p)) for _, p in items])
    single = len(items) == 1
    jobs: list[Job] = []
    seen: set[Path] = set()
    for (given, root), label in zip(items, labels):
        if root.is_dir():
            top = () if single else (naming.folder_component(label),)
            for f in _walk(root, out_abs, recursive):
                if f in seen:
                    continue
                seen.add(f)
                rel = f.relative_to(root)
                folders = top + tuple(naming.folder_component(part) for part in rel.parts[:-1])
                jobs.append(Job(f, folders, rel.name, str(Path(given) / rel)))
        elif root not in seen:
            seen.add(root)
            jobs.append(Job(Path(given), (), root.name if single else label, given))
    return jobs, missing


# Settings in prompts.json that change what every existing output file means.
RUN_SETTINGS = ("threshold", "prob_format", "model", "keep_aspect")
LEGEND_VERSION = 2


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
        return f"mixed:{prompt.text_weight!r}:{prompt.text}|{prompt_source(prompt.visual)}"
    if isinstance(prompt, torch.Tensor):
        return "embedding:" + hashlib.sha256(prompt.detach().float().cpu().numpy().tobytes()).hexdigest()[:16]
    return f"unknown:{type(prompt).__name__}"


def output_targets(job: Job, prompt_keys: Sequence[str], set_key: str, options: SegmentOptions) -> dict[str, Path]:
    """The output files of one image: 'prob:K' / 'mask:K' per prompt K, and 'overlay',
    'labels', 'rle' for the prompt set, as far as `options.outputs` asks for them."""
    folder = Path(options.out_dir).joinpath(*job.folders)
    f = job.file_name
    t: dict[str, Path] = {}
    for k, key in enumerate(prompt_keys):
        if "prob" in options.outputs:
            t[f"prob:{k}"] = folder / naming.output_name(f, f"prob-{options.prob_format}", prompt=key)
        if "mask" in options.outputs:
            t[f"mask:{k}"] = folder / naming.output_name(f, "mask", prompt=key)
    for kind in ("overlay", "labels", "rle"):
        if kind in options.outputs:
            t[kind] = folder / naming.output_name(f, kind, combined=set_key)
    return t


class Segmenter:
    """Runs a fixed list of prompts (encoded once) over images and writes the chosen outputs."""

    def __init__(self, predictor: Predictor, prompts: Sequence, names: Sequence[str], options: SegmentOptions):
        if not prompts:
            raise ValueError("no prompts")
        self.predictor = predictor
        self.prompts = list(prompts)
        self.names = list(names)
        self.options = options
        with torch.inference_mode():
            cond = predictor.prompt_encoder.encode(self.prompts)  # PromptError here, before any image
        self.cond = [c for c in cond]
        self.sources = [prompt_source(p) for p in self.prompts]
        self.keys = [naming.prompt_key(n, src) for n, src in zip(self.names, self.sources)]
        owner: dict[str, str] = {}
        for key, src in zip(self.keys, self.sources):
            if owner.setdefault(key, src) != src:  # a 48-bit hash collision: refuse rather than mix
                raise ValueError(f"prompts '{owner[key]}' and '{src}' map to the same file name key '{key}'")
        self.set_key = naming.set_key(self.keys, options.threshold, self._none_threshold)

    @property
    def _none_threshold(self) -> float:
        o = self.options
        return o.threshold if o.none_threshold is None else o.none_threshold

    def targets(self, job: Job) -> dict[str, Path]:
        """Every output file of one image, by a name for the kind (see `inference.naming`)."""
        return output_targets(job, self.keys, self.set_key, self.options)

    def legend(self) -> dict:
        """What prompts.json records: every prompt and prompt set that files in the folder were
        made with (merged over runs), and the settings behind all of them."""
        o = self.options
        return {
            "format": "clipseg-segment-legend",
            "version": LEGEND_VERSION,
            "naming": "IMAGE_FILE.PROMPT_KEY.(mask.png|prob.png|prob.npy) and IMAGE_FILE.SET_KEY."
                      "(overlay.png|labels.png|rle.json); see clipseg.inference.naming",
            "threshold": o.threshold,
            "prob_format": o.prob_format,
            "model": o.model,
            "keep_aspect": o.keep_aspect,
            "prompts": {
                key: {"prompt": n, "source": src,
                      **({"text_weight": p.text_weight} if isinstance(p, MixedPrompt) else {})}
                for p, n, src, key in zip(self.prompts, self.names, self.sources, self.keys)
            },
            "sets": {
                self.set_key: {
                    "labels": {str(k + 1): key for k, key in enumerate(self.keys)},  # label value -> prompt key
                    "colours": {key: list(out.colour(k)) for k, key in enumerate(self.keys)},
                    "threshold": o.threshold,
                    "none_threshold": self._none_threshold,
                }
            },
        }

    def merged_legend(self) -> dict:
        """This run's legend merged into the folder's prompts.json; SettingsConflict if the
        folder holds outputs that were made with other settings."""
        o = self.options
        legend = self.legend()
        path = Path(o.out_dir) / naming.LEGEND_NAME
        if o.overwrite or not path.exists():
            return legend
        try:
            old = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise SettingsConflict(f"'{path}' cannot be read ({type(e).__name__}), so what the outputs in "
                                   f"'{o.out_dir}' mean is unknown; pass --overwrite to recompute them, or choose "
                                   "another output folder") from None
        if not isinstance(old, dict) or old.get("version") != LEGEND_VERSION \
                or not isinstance(old.get("prompts"), dict) or not isinstance(old.get("sets"), dict):
            raise SettingsConflict(f"'{o.out_dir}' holds outputs of an earlier clipseg version or of another "
                                   "program (its prompts.json is not this version's legend); pass --overwrite, "
                                   "or choose another output folder")
        changed = [f"{key} {old.get(key)!r} -> {legend[key]!r}" for key in RUN_SETTINGS if old.get(key) != legend[key]]
        changed += [f"prompt '{q['prompt']}' is not the one its files were made from"
                    for key, q in legend["prompts"].items()
                    if isinstance(old["prompts"].get(key), dict) and old["prompts"][key].get("source") != q["source"]]
        if changed:
            raise SettingsConflict(
                f"'{o.out_dir}' holds outputs of a run with other settings ({'; '.join(changed)}); "
                "pass --overwrite to recompute them, or choose another output folder")
        return {**legend, "prompts": {**old["prompts"], **legend["prompts"]},
                "sets": {**old["sets"], **legend["sets"]}}

    def write_legend(self) -> None:
        out.write_json(Path(self.options.out_dir) / naming.LEGEND_NAME, self.merged_legend())

    def process(self, job: Job) -> bool:
        """Segment one image; False = skipped because its outputs exist."""
        o = self.options
        targets = self.targets(job)
        if not o.overwrite and all(p.exists() for p in targets.values()):
            return False
        image = load_image(job.source, **({"max_pixels": o.max_pixels} if o.max_pixels else {}))
        self.predictor.set_image(image)
        combined = [kind for kind in ("overlay", "labels", "rle") if kind in targets]
        best = out.RunningBest(self.predictor.original_size) if {"overlay", "labels"} & set(combined) else None
        annotations = []
        # one full-resolution map at a time: memory is one map, however many prompts
        maps = self.predictor.predict_iter(self.cond)
        for k in range(len(self.cond)):
            prob = next(maps)  # not enumerate(maps): its reused tuple would keep the previous map alive
            if f"prob:{k}" in targets:
                if o.prob_format == "npy":
                    out.write_npy(targets[f"prob:{k}"], prob)
                else:
                    out.write_png(targets[f"prob:{k}"], out.prob_image16(prob))
            if f"mask:{k}" in targets:
                out.write_png(targets[f"mask:{k}"], out.mask_image(prob >= o.threshold))
            if best is not None:
                best.add(prob)
            if "rle" in targets:
                annotations.append(out.rle_annotation(k, prob, self.names[k], o.threshold))
            del prob
        if "overlay" in targets:
            out.write_png(targets["overlay"], out.overlay_image(image, best, threshold=o.threshold))
        if "labels" in targets:
            out.write_png(targets["labels"], out.label_image(best.labels(self._none_threshold)))
        if "rle" in targets:
            h, w = self.predictor.original_size
            out.write_json(targets["rle"], {
                "image": job.display,
                "height": int(h),
                "width": int(w),
                "threshold": o.threshold,
                "prompt_keys": self.keys,
                "annotations": annotations,
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
        summary.stale_removed = remove_stale_temporaries(o.out_dir)
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

