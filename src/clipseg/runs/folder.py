"""`clipseg segment`: one image, many images, or whole folders, by text and visual prompts.

Folder runs are recursive and resumable: an image whose outputs all exist is skipped
(outputs are written atomically, so an existing file is a complete one). A file that
cannot be read is reported and the run goes on; the summary at the end lists failures.
`prompts.json` records what the outputs mean (weights, threshold, each prompt's source);
resuming into a folder written with other settings is refused (`SettingsConflict`)
instead of mixing old and new results under the same file names.
"""

from __future__ import annotations

import functools
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from PIL import Image

from ..editing import MaskOptions, cutout, edit_map, find_regions, regions_record
from ..inference.masks import DEFAULT_THRESHOLD
from ..inference.predictor import full_resolution_maps
from ..inference.refine import EdgeRefiner
from ..inference.tiles import TileBlender, tile_inputs
from ..io.atomic import remove_stale_temporaries
from ..io.video import is_video_name
from ..io.progress import progress_bar
from ..inference import naming
from ..inference import outputs as out
from ..prompts import MixedPrompt
from ..prompts.expression import plan_prompts
from .backends import backend_for
from .video import run_video
from .loader import BoundedWriter, ImageJobs, LoadedImage, Shard, describe_failure, load_images, shape_runs

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pbm", ".jfif"}
OUTPUT_KINDS = ("prob", "mask", "overlay", "labels", "rle", "cutout", "regions")
PER_PROMPT_EDITED = ("mask", "rle", "cutout", "regions")  # the outputs that editing options change
DEFAULT_REGION_PADDING = 16


@dataclass
class SegmentOptions:
    out_dir: Path
    outputs: tuple[str, ...] = ("mask",)
    prob_format: str = "png"  # png (16-bit) | npy (float32)
    threshold: float = DEFAULT_THRESHOLD
    none_threshold: float | None = None  # label maps; default = threshold
    overwrite: bool = False
    recursive: bool = True
    progress: bool | None = None  # None = only on a terminal
    max_pixels: int | None = None
    model: str = ""  # what was loaded (recorded; a resumed run must use the same)
    keep_aspect: bool = False
    batch_size: int = 8  # images per backbone pass (of one input shape)
    workers: int = 0  # DataLoader processes decoding images (0 = in the main thread)
    write_threads: int = 1  # threads turning logits into files
    autocast: torch.dtype | None = None  # e.g. torch.float16 on CUDA
    editing: MaskOptions = field(default_factory=MaskOptions)  # masks, RLE, cut-outs and regions
    negative: tuple[str, ...] = ()  # subtracted from every prompt: (prompt) - (n1 | n2 ...)
    region_padding: int = DEFAULT_REGION_PADDING  # context around each region's crop box (px)
    region_order: str = "area"  # regions largest first, or "left-to-right"
    refine: bool = False  # probability maps follow the image's edges (clipseg.inference.refine)
    tiles: int | str | None = None  # crops per side for large images, or "auto" (clipseg.inference.tiles)
    temporal: int = 1  # videos: mean of the last W frames' term probabilities (1 = off)
    video_out: bool = False  # videos: also a mask video per prompt
    legend: bool = True  # overlays: a strip below the image naming each prompt's colour
    record_items: bool = False  # keep a record per image (outputs, present, area) for RunSummary.images
    aliases: tuple[tuple[str, str], ...] = ()  # (text prompt as given, file-name key chosen for it)

    def maps_record(self) -> dict:
        """How the probability maps were made, where it differs from the defaults (in `made_with`)."""
        return {k: v for k, v in (("refine", self.refine), ("tiles", self.tiles), ("temporal", self.temporal))
                if v and not (k == "temporal" and v == 1)}

    def editing_record(self) -> dict:
        """The editing settings that differ from the defaults (recorded in `made_with`)."""
        rec = self.editing.record()
        if self.region_padding != DEFAULT_REGION_PADDING:
            rec["region_padding"] = self.region_padding
        if self.region_order != "area":
            rec["region_order"] = self.region_order
        return rec


class SettingsConflict(ValueError):
    """The output folder holds results of a run with other settings, or cannot hold this
    run's outputs apart (input names that differ only in case, on a case-insensitive disk)."""


STDIN = Path("<stdin>")  # stands for an image read from standard input (its outputs: stdin.KEY...)


@dataclass
class Job:
    source: Path | bytes  # bytes: an image read from standard input
    folders: tuple[str, ...]  # output folders below out_dir (naming.folder_component applied)
    file_name: str  # the input's file name, extension included (or made unique, see naming.root_labels)
    display: str
    video: bool = False  # a video file: its frames are the images (runs.video)


@dataclass
class RunSummary:
    total: int = 0
    done: int = 0
    skipped: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0
    stale_removed: int = 0  # temporaries of killed earlier runs, deleted
    notes: list[str] = field(default_factory=list)  # e.g. multi-frame files of which one frame was segmented
    images: list[dict] | None = None  # per image (SegmentOptions.record_items): see Segmenter.record

    @property
    def ok(self) -> bool:
        return not self.failed

    def to_dict(self) -> dict:
        d = {"total": self.total, "segmented": self.done, "skipped": self.skipped,
             "failed": [{"input": name, "reason": reason} for name, reason in self.failed],
             "seconds": round(self.seconds, 3), "stale_temporaries_removed": self.stale_removed, "notes": self.notes}
        if self.images is not None:
            d["images"] = self.images
        return d

    def report(self) -> str:
        lines = [f"{self.total} image(s): {self.done} segmented, {self.skipped} skipped (outputs exist), "
                 f"{len(self.failed)} failed, in {self.seconds:.1f} s"]
        lines += [f"note: {n}" for n in self.notes]
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


def input_problem(item: str | Path) -> str | None:
    """Why an input named by the user cannot be segmented ('does not exist', 'is neither a file
    nor a folder'), or None when it is a file or a folder."""
    path = Path(item)
    if path.is_dir() or path.is_file():
        return None
    return "is neither a file nor a folder" if path.exists() else "does not exist"


def collect_jobs(inputs: Sequence[str | Path], out_dir: Path, recursive: bool = True) -> tuple[list[Job], list[tuple[str, str]]]:
    """Images to process (sorted, folders walked) and inputs that are missing.

    Output locations are injective (see `inference.naming`): one input (file or folder)
    maps to the top of out_dir; several inputs each get a top-level name of their own.
    A file given twice (or reached through two inputs) is one job.
    """
    missing: list[tuple[str, str]] = []
    out_abs = Path(out_dir).resolve()
    items: list[tuple[str, Path]] = []  # (as given, resolved)
    stdin: bytes | None = None
    for item in inputs:
        if isinstance(item, bytes):  # the bytes of an image read from standard input ("-")
            stdin = item
            items.append(("-", STDIN))
            continue
        problem = input_problem(item)
        if problem is None:
            items.append((str(item), Path(item).resolve()))
        else:
            missing.append((str(item), problem))
    labels = naming.root_labels([("stdin" if p == STDIN else p.name or "root", str(p)) for _, p in items])
    single = len(items) == 1
    jobs: list[Job] = []
    seen: set[Path] = set()
    for (given, root), label in zip(items, labels):
        if root != STDIN and root.is_dir():
            top = () if single else (naming.folder_component(label),)
            for f in _walk(root, out_abs, recursive):
                if f in seen:
                    continue
                seen.add(f)
                rel = f.relative_to(root)
                folders = top + tuple(naming.folder_component(part) for part in rel.parts[:-1])
                jobs.append(Job(f, folders, rel.name, str(Path(given) / rel)))
        elif root == STDIN:
            jobs.append(Job(stdin, (), "stdin" if single else label, "<stdin>"))
        elif root not in seen:
            seen.add(root)
            jobs.append(Job(Path(given), (), root.name if single else label, given, video=is_video_name(root)))
    return jobs, missing


def check_case_collisions(jobs: Sequence[Job], out_dir: Path) -> None:
    """SettingsConflict when `out_dir` ignores letter case and two inputs' outputs would differ
    only in it (a.jpg and A.jpg of a case-sensitive disk): one would overwrite the other."""
    pairs = naming.case_collisions([(*job.folders, job.file_name) for job in jobs])
    if pairs and naming.is_case_insensitive(out_dir):
        shown = "; ".join(f"'{a}' and '{b}'" for a, b in pairs[:3]) + (f" (+{len(pairs) - 3} more)" if len(pairs) > 3 else "")
        raise SettingsConflict(f"'{out_dir}' ignores letter case, and the inputs {shown} differ only in case: their "
                               "outputs would overwrite each other. Write to a case-sensitive folder, or rename them.")


# Settings in prompts.json that change what every existing output file means.
RUN_SETTINGS = ("threshold", "prob_format", "model", "keep_aspect")
LEGEND_VERSION = 2


def output_targets(job: Job, prompt_keys: Sequence[str], set_key: str, options: SegmentOptions) -> dict[str, Path]:
    """The output files of one image: 'prob:K' / 'mask:K' / 'cutout:K' / 'regions:K' per
    prompt K, and 'overlay', 'labels', 'rle' for the prompt set, as far as `options.outputs`
    asks for them."""
    folder = Path(options.out_dir).joinpath(*job.folders)
    f = job.file_name
    t: dict[str, Path] = {}
    for k, key in enumerate(prompt_keys):
        if "prob" in options.outputs:
            t[f"prob:{k}"] = folder / naming.output_name(f, f"prob-{options.prob_format}", prompt=key)
        for kind in ("mask", "cutout", "regions"):
            if kind in options.outputs:
                t[f"{kind}:{k}"] = folder / naming.output_name(f, kind, prompt=key)
    for kind in ("overlay", "labels", "rle"):
        if kind in options.outputs:
            t[kind] = folder / naming.output_name(f, kind, combined=set_key)
    return t


class Segmenter:
    """Runs a fixed list of prompts (encoded once) over images and writes the chosen outputs."""

    def __init__(self, predictor, prompts: Sequence, names: Sequence[str], options: SegmentOptions):
        """predictor: a `Predictor` or an `OnnxPredictor` (the --backend onnx run)."""
        if not prompts:
            raise ValueError("no prompts")
        self.predictor = predictor
        self.plan = plan_prompts(list(prompts), list(names), options.negative)  # ExpressionError here
        self.prompts = self.plan.outputs  # prompts and expressions, one per output
        self.names = self.plan.names
        self.options = options
        self.backend = backend_for(predictor, options.autocast)
        self.cond = self.backend.encode_prompts(self.plan.terms)  # (T, E); PromptError here, before any image
        self.sources = [naming.prompt_identity(p) for p in self.prompts]
        aliases = dict(options.aliases)  # a chosen key for a text prompt as given (--name KEY=PROMPT)
        self.keys = [aliases.get(given) if isinstance(given, str) and given in aliases else naming.prompt_key(n, src)
                     for given, n, src in zip(prompts, self.names, self.sources)]
        self.records: dict[str, dict] = {}  # input -> record, when options.record_items
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
        made_with = {key: getattr(o, key) for key in RUN_SETTINGS}  # each entry: the settings its files have
        if o.editing_record():  # absent with the defaults: folders of earlier versions resume
            made_with["editing"] = o.editing_record()
        if o.maps_record():
            made_with["maps"] = o.maps_record()
        return {
            "format": "clipseg-segment-legend",
            "version": LEGEND_VERSION,
            "naming": "IMAGE_FILE.PROMPT_KEY.(mask.png|prob.png|prob.npy|cutout.png|regions.json) and "
                      "IMAGE_FILE.SET_KEY.(overlay.png|labels.png|rle.json); see clipseg.inference.naming",
            "threshold": o.threshold,
            "prob_format": o.prob_format,
            "model": o.model,
            "keep_aspect": o.keep_aspect,
            "prompts": {
                key: {"prompt": n, "source": src,
                      **({"text_weight": p.text_weight} if isinstance(p, MixedPrompt) else {}),
                      "made_with": made_with}
                for p, n, src, key in zip(self.prompts, self.names, self.sources, self.keys)
            },
            "sets": {
                self.set_key: {
                    "labels": {str(k + 1): key for k, key in enumerate(self.keys)},  # label value -> prompt key
                    "colours": {key: list(out.colour(k)) for k, key in enumerate(self.keys)},
                    "threshold": o.threshold,
                    "none_threshold": self._none_threshold,
                    "made_with": made_with,
                }
            },
        }

    def merged_legend(self) -> dict:
        """This run's legend merged into the folder's prompts.json; SettingsConflict if the
        folder holds outputs that were made with other settings."""
        o = self.options
        legend = self.legend()
        path = Path(o.out_dir) / naming.LEGEND_NAME
        if not path.exists():
            return legend
        try:
            old = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            if o.overwrite:
                return legend
            raise SettingsConflict(f"'{path}' cannot be read ({type(e).__name__}), so what the outputs in "
                                   f"'{o.out_dir}' mean is unknown; pass --overwrite to recompute them, or choose "
                                   "another output folder") from None
        if not isinstance(old, dict) or old.get("version") != LEGEND_VERSION \
                or not isinstance(old.get("prompts"), dict) or not isinstance(old.get("sets"), dict):
            if o.overwrite:
                return legend
            raise SettingsConflict(f"'{o.out_dir}' holds outputs of an earlier clipseg version or of another "
                                   "program (its prompts.json is not this version's legend); pass --overwrite, "
                                   "or choose another output folder")
        # this run's entries replace theirs; the others keep the settings their files were made with
        merged = {**legend, "prompts": {**old["prompts"], **legend["prompts"]}, "sets": {**old["sets"], **legend["sets"]}}
        if o.overwrite:
            return merged
        changed = [f"{key} {old.get(key)!r} -> {legend[key]!r}" for key in RUN_SETTINGS if old.get(key) != legend[key]]
        changed += [f"prompt '{q['prompt']}' is not the one its files were made from"
                    for key, q in legend["prompts"].items()
                    if isinstance(old["prompts"].get(key), dict) and old["prompts"][key].get("source") != q["source"]]
        made_with = {key: old.get(key) for key in RUN_SETTINGS}  # entries of the first version lack their own
        changed += [f"the files of '{entry_name}' were made with {old_entry.get('made_with', made_with)}"
                    for part in ("prompts", "sets") for key, entry in legend[part].items()
                    if isinstance(old_entry := old[part].get(key), dict)
                    and old_entry.get("made_with", made_with) != entry["made_with"]
                    for entry_name in [entry.get("prompt", f"prompt set {key}")]]
        if changed:
            raise SettingsConflict(
                f"'{o.out_dir}' holds outputs of a run with other settings ({'; '.join(changed)}); "
                "pass --overwrite to recompute them, or choose another output folder")
        return merged

    def write_legend(self) -> None:
        out.write_json(Path(self.options.out_dir) / naming.LEGEND_NAME, self.merged_legend())

    def encode_batch(self, batch: Sequence[LoadedImage]) -> list[torch.Tensor]:
        """Logits (N, h, w) on the CPU for each image of a batch of equal input shape."""
        return self.backend.batch_logits([item.pixels for item in batch], self.cond)

    def tile_logits(self, rgb: np.ndarray) -> tuple[object, torch.Tensor] | None:
        """The crops of a tiled image and their logits (K, T, h, w), the crops in batches of
        `batch_size` through the backbone; None when one crop is the whole image."""
        prepared = tile_inputs(rgb, self.options.tiles, self.backend.input_size, self.backend.prepare)
        if prepared is None:
            return None
        grid, pixels = prepared
        bs = self.options.batch_size
        logits = [lg for s in range(0, len(pixels), bs) for lg in self.backend.batch_logits(pixels[s : s + bs], self.cond)]
        return grid, torch.stack(logits)

    def record(self, job: Job, targets: dict[str, Path], status: str, frames: int = 1) -> dict:
        """What --json says of one image: its outputs by prompt (and those of the prompt set),
        and, once segmented, each prompt's `present` and `area_fraction` (filled by write_outputs)."""
        rec: dict = {"input": job.display, "status": status,
                     "outputs": {k: str(p) for k, p in targets.items() if ":" not in k},
                     "prompts": [{"prompt": n, "key": key, "present": None, "area_fraction": None,
                                  "outputs": {k.split(":")[0]: str(p) for k, p in targets.items()
                                              if k.endswith(f":{i}")}}
                                 for i, (n, key) in enumerate(zip(self.names, self.keys))]}
        if frames > 1:
            rec["frames"] = frames
        return rec

    def write_outputs(self, job: Job, targets: dict[str, Path], logits: torch.Tensor, size: tuple[int, int],
                      rgb: np.ndarray | None, tiles: tuple | None = None, frames: int = 1) -> None:
        """Every output file of one image from its terms' logits (T, h, w) (and its crops',
        when tiled): the maps are made at the original size one at a time, so memory is a few
        full-size maps, however many prompts."""
        o = self.options
        o.editing.check_size(*size)  # MaskOptionsError (this image fails) before any file is written
        best = out.RunningBest(size) if {"overlay", "labels"} & set(targets) else None
        annotations = []
        device = self.backend.device
        logits = logits.to(device)
        refiner = None
        if o.refine:
            patch = self.backend.patch  # the logits are at the input size: the model decides on its patch grid
            refiner = EdgeRefiner(rgb, (logits.shape[-2] // patch, logits.shape[-1] // patch), device=device)
        blender = TileBlender(tiles[0], tiles[1].to(device), logits) if tiles is not None else None
        maps = full_resolution_maps(logits, size, self.plan, refiner=refiner, tiles=blender, threshold=o.threshold)
        rec = self.record(job, targets, "segmented", frames) if o.record_items else None
        for k in range(len(self.prompts)):
            prob = next(maps)  # not enumerate(maps): its reused tuple would keep the previous map alive
            if f"prob:{k}" in targets:
                if o.prob_format == "npy":
                    out.write_npy(targets[f"prob:{k}"], prob)
                else:
                    out.write_png(targets[f"prob:{k}"], out.prob_image16(prob))
            if any(f"{kind}:{k}" in targets for kind in PER_PROMPT_EDITED) or "rle" in targets or rec:
                edited = edit_map(prob, o.threshold, o.editing)
                if rec:
                    rec["prompts"][k].update(present=bool(edited.present), area_fraction=float(edited.mask.mean()))
                if f"mask:{k}" in targets:
                    out.write_png(targets[f"mask:{k}"], Image.fromarray(edited.matte8(), "L"))
                if f"cutout:{k}" in targets:
                    out.write_png(targets[f"cutout:{k}"], cutout(rgb, edited))
                if f"regions:{k}" in targets:
                    found = find_regions(edited.mask, o.region_padding, o.region_order)
                    out.write_json(targets[f"regions:{k}"], {
                        "image": job.display, "prompt": self.names[k], "key": self.keys[k], "threshold": o.threshold,
                        "editing": o.editing.record(),
                        **regions_record(found, size[0], size[1], o.region_padding, o.region_order)})
                if "rle" in targets:
                    annotations.append({**out.mask_annotation(k, prob, self.names[k], edited.mask),
                                        "present": edited.present})
                del edited
            if best is not None:
                best.add(prob)
            del prob
        if "overlay" in targets:
            out.write_png(targets["overlay"], out.overlay_image(Image.fromarray(rgb), best, threshold=o.threshold,
                                                                names=self.names if o.legend else None))
        if "labels" in targets:
            out.write_png(targets["labels"], out.label_image(best.labels(self._none_threshold)))
        if "rle" in targets:
            out.write_json(targets["rle"], {
                "image": job.display,
                "height": int(size[0]),
                "width": int(size[1]),
                "threshold": o.threshold,
                "prompt_keys": self.keys,
                "annotations": annotations,
            })
        if rec:
            self.records[job.display] = rec

    def run(self, inputs: Sequence[str | Path], shard: Shard | None = None) -> RunSummary:
        """Segment every image of `inputs` that has outputs missing (this rank's share of
        them under torchrun); see the module docstring and `segment_loader`."""
        start = time.perf_counter()
        o = self.options
        shard = shard or Shard()
        jobs, missing = collect_jobs(inputs, Path(o.out_dir), o.recursive)
        Path(o.out_dir).mkdir(parents=True, exist_ok=True)
        check_case_collisions(jobs, Path(o.out_dir))
        jobs, missing = shard.take(jobs), (missing if shard.rank == 0 else [])
        summary = RunSummary(total=len(jobs) + len(missing) - sum(job.video for job in jobs), failed=list(missing))
        self.write_legend()
        summary.stale_removed = remove_stale_temporaries(o.out_dir)
        todo: list[tuple[Job, dict[str, Path]]] = []
        videos = [job for job in jobs if job.video]
        for job in jobs:
            if job.video:
                continue
            targets = self.targets(job)
            if not o.overwrite and all(p.exists() for p in targets.values()):
                summary.skipped += 1
            else:
                todo.append((job, targets))
        bar = progress_bar(total=len(jobs), initial=summary.skipped, enabled=o.progress, unit="img",
                           desc="segment" + (f" rank {shard.rank}" if shard.enabled else ""))

        def finished(key: int | Job, error: BaseException | str | None) -> None:
            if error is None:
                summary.done += 1
            else:
                reason = error if isinstance(error, str) else describe_failure(error)
                summary.failed.append((key.display if isinstance(key, Job) else todo[key][0].display, reason))
            bar.update(1)
            bar.set_postfix(failed=len(summary.failed), refresh=False)

        dataset = ImageJobs([job.source for job, _ in todo], self.backend.prepare, o.max_pixels,
                            keep_rgb=bool({"overlay", "cutout"} & set(o.outputs)) or o.refine or bool(o.tiles))
        writer = BoundedWriter(o.write_threads, max_pending=2 * o.batch_size, on_done=finished)
        try:
            for batch in shape_runs(load_images(dataset, o.workers), o.batch_size):
                if batch[0].pixels is None:  # its error was described where it was read
                    finished(batch[0].index, batch[0].error)
                    continue
                try:
                    logits = self.encode_batch(batch)
                except (KeyboardInterrupt, SystemExit):
                    raise
                except Exception as e:  # e.g. out of memory on this batch: its images fail, the run goes on
                    for item in batch:
                        finished(item.index, e)
                    continue
                for item, lg in zip(batch, logits):
                    job, targets = todo[item.index]
                    try:
                        tiles = self.tile_logits(item.rgb) if o.tiles else None
                    except (KeyboardInterrupt, SystemExit):
                        raise
                    except Exception as e:  # e.g. out of memory on the crops: this image fails
                        finished(item.index, e)
                        continue
                    if item.frames > 1:
                        summary.notes.append(f"{job.display} has {item.frames} frames; only the first was segmented "
                                             "(split it into images, or convert it to a video, to segment each)")
                    writer.submit(item.index, functools.partial(self.write_outputs, job, targets, lg, item.size, item.rgb,
                                                                tiles, item.frames))
            for job in videos:
                run_video(self, job, summary, bar, writer)
            writer.drain()
        finally:
            writer.close(cancel=True)
            bar.close()
        summary.seconds = time.perf_counter() - start
        if o.record_items:
            summary.images = self._records(jobs, todo, summary)
        return summary

    def _records(self, jobs: list[Job], todo: list[tuple[Job, dict[str, Path]]], summary: RunSummary) -> list[dict]:
        """Every input's record in input order (a video's frames after it), skipped and failed ones too."""
        failed = dict(summary.failed)
        pending = {job.display for job, _ in todo}
        records = []
        for job in jobs:
            if job.video:
                frames = [r for d, r in self.records.items() if d.startswith(job.display + "#")]
                records += sorted(frames, key=lambda r: int(r["input"].rsplit("#", 1)[1]))
                continue
            rec = self.records.get(job.display)
            if rec is None:
                status = "skipped" if job.display not in pending and job.display not in failed else "failed"
                rec = self.record(job, self.targets(job), status)
                if status == "failed":
                    rec["error"] = failed.get(job.display, "")
            records.append(rec)
        return records


def gather_summaries(summary: RunSummary, shard: Shard) -> RunSummary:
    """All ranks' summaries added up (every rank gets the total), over torch.distributed:
    the process group torchrun prepared (gloo; it only carries these few numbers)."""
    import torch.distributed as dist

    created = not dist.is_initialized()
    if created:
        dist.init_process_group("gloo")
    try:
        parts: list = [None] * shard.world
        dist.all_gather_object(parts, summary)
    finally:
        if created:
            dist.destroy_process_group()
    total = RunSummary(seconds=max(p.seconds for p in parts))
    for p in parts:
        total.total += p.total
        total.done += p.done
        total.skipped += p.skipped
        total.failed += p.failed
        total.stale_removed += p.stale_removed
        total.notes += p.notes
        if p.images is not None:
            total.images = sorted((total.images or []) + p.images, key=lambda r: r["input"])
    return total
