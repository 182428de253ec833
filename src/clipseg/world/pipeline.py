"""The whole CLIPSeg pipeline on the generated scene world, offline, on CPU.

Stages (each cached on disk under a key hashed from the settings it depends on, see config.py):

1. `clip_stage`: a small CLIP (same code as ViT-B/16, smaller config) pretrained
   contrastively on captioned scenes of ALL shape classes, with the world's word tokenizer.
2. `decoder_stage`: three decoders trained on a PhraseCut+-style set of the SEEN classes
   only (`clipseg.worldgen.dataset`, negatives p=0.2, visual supports, templates, text /
   visual interpolation by the project's trainer):
   - "clipseg":        CLIPSeg decoder on the pretrained, frozen CLIP;
   - "clip-deconv":    the paper's CLIP-Deconv baseline on the same CLIP;
   - "clipseg-random": CLIPSeg decoder on a randomly initialised (not pretrained) CLIP.
3. `scoring`: evaluation with the paper's metrics (49 thresholds, best t by mIoU):
   referring expressions on seen classes (text), zero-shot on held-out classes (text),
   one-shot on held-out classes (visual prompts), and negatives (prompts of absent things);
   and `prompt_use`, how much each model's maps depend on the prompt (0.5 = not at all).

`run_pipeline()` (here) runs or loads everything and returns the table; `demo.segment_demo()`
segments a generated scene by any prompt and writes an overlay PNG.
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..training.clip_pretrain import torch_threads
from .clip_stage import caption_dataset, clip_classification_accuracy, pretrained_clip  # noqa: F401
from .config import (  # noqa: F401 (the pipeline's public names, in one place)
    CACHE_ENV, DEFAULT_PRESET, EVAL_TASKS, MODEL_LABELS, MODEL_NAMES, PRESETS, TASK_LABELS, WorldPipelineConfig, default_cache_dir,
    world_config, world_tokenizer,
)
from .decoder_stage import build_world_model, load_world_models, trained_model, training_set  # noqa: F401
from .demo import DemoResult, segment_demo  # noqa: F401
from .runlog import Timer, log
from .scoring import ListDataset, evaluation_sets, format_table, prompt_use, score_world_model, summarize  # noqa: F401


@dataclass
class PipelineResult:
    """What `run_pipeline` returns (and caches as results-<key>.json)."""

    config: dict[str, Any]
    folds: dict[str, list[dict[str, Any]]]  # fold -> per model: {"model", "label", task: {...}, "vs": ...}
    clip_accuracy: dict[str, Any]  # zero-shot classification of single objects by the pretrained CLIP
    timings: dict[str, float] = field(default_factory=dict)  # seconds per stage in this call
    loaded: dict[str, bool] = field(default_factory=dict)  # stage -> taken from the cache
    seconds: float = 0.0  # wall time of this call
    compute_seconds: float = 0.0  # wall time of the stages when they were computed (summed over runs)
    cache_dir: str = ""

    @property
    def rows(self) -> list[dict[str, Any]]:
        """The rows of the first fold (the shipped models)."""
        return next(iter(self.folds.values()))

    @property
    def table(self) -> str:
        return "\n\n".join(
            format_table(rows, self.clip_accuracy if k == 0 else None,
                         title=f"CLIPSeg on the generated world, held-out fold {fold} (scores in %)")
            for k, (fold, rows) in enumerate(self.folds.items()))

    def row(self, model: str, fold: str | None = None) -> dict[str, Any]:
        rows = self.folds[fold] if fold is not None else self.rows
        return next(r for r in rows if r["model"] == model)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def run_pipeline(config: WorldPipelineConfig | None = None, progress: bool = True,
                 cache_dir: str | Path | None = None, force: bool = False) -> PipelineResult:
    """Pretrain the CLIP, train the three models for each fold of `config.eval_folds`, evaluate,
    and return the tables (every stage cached). force=True recomputes every stage.

    With an explicit `config.unseen` only that split is run (reported as fold "custom").
    """
    config = config or PRESETS[DEFAULT_PRESET]
    cache = Path(cache_dir or default_cache_dir())
    start = time.perf_counter()
    results_path = cache / f"results-{config.results_key()}.json"
    if results_path.exists() and not force:
        d = json.loads(results_path.read_text())
        d.update(timings={}, loaded={"all": True}, seconds=time.perf_counter() - start, cache_dir=str(cache))
        return PipelineResult(**d)
    timer = Timer()
    with timer("clip"):
        clip, tokenizer, clip_info = pretrained_clip(config, cache, progress, force)
    infos, folds = {"clip": clip_info}, {}
    runs = {"custom": config} if config.unseen else {str(f): config.for_fold(f) for f in config.eval_folds}
    for fold, fold_config in runs.items():
        models = {}
        for name in MODEL_NAMES:
            with timer(f"{name} fold {fold}"):
                models[name], infos[f"{name} fold {fold}"] = trained_model(
                    name, fold_config, clip, tokenizer, cache, progress, force)
        with timer(f"evaluation fold {fold}"), torch_threads(config.threads):
            log(progress, f"[world] evaluating fold {fold} ({config.eval_size} samples per task)")
            sets = evaluation_sets(fold_config)
            counts = {n: score_world_model(models[n], tokenizer, sets) for n in MODEL_NAMES}
            folds[fold] = summarize(counts, MODEL_LABELS, config.bootstrap, config.seed)
            for row in folds[fold]:
                row["prompt_use"] = {c: prompt_use(models[row["model"]], tokenizer, fold_config, c)
                                     for c in ("seen", "held_out")}
    with timer("clip evaluation"), torch_threads(config.threads):
        clip_accuracy = clip_classification_accuracy(clip, tokenizer, config)
    compute = sum(i.get("seconds", 0.0) for i in infos.values()) + sum(
        v for k, v in timer.timings.items() if "evaluation" in k)
    result = PipelineResult(
        config=config.to_dict(), folds=folds, clip_accuracy=clip_accuracy, timings=timer.timings,
        loaded={k: bool(v.get("loaded")) for k, v in infos.items()},
        seconds=time.perf_counter() - start, compute_seconds=compute, cache_dir=str(cache))
    results_path.parent.mkdir(parents=True, exist_ok=True)
    saved = result.to_dict()
    for k in ("timings", "loaded", "seconds", "cache_dir"):
        saved.pop(k)
    results_path.write_text(json.dumps(saved, indent=1) + "\n")
    return result
