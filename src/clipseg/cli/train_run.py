"""`clipseg train --config configs/x.json --data ROOT [--backbone CLIP_WEIGHTS]`.

Under `torchrun --nproc_per_node N -m clipseg train ...` it trains on N ranks.
`--init WEIGHTS` fine-tunes a trained model (anything `load_clipseg` reads) instead of
starting the decoder from random weights.
"""

from __future__ import annotations

from dataclasses import dataclass
import json
import os
import shlex
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

import torch

from torch.utils.data import Dataset

from ..model import CLIPSeg, build_clipseg, variant_config
from ..model.config import CLIPSegConfig, VisionConfig
from ..tokenizer import Tokenizer
from ..training.checkpoint import CheckpointMismatchError
from ..training.config import Experiment, ModelSpec, TrainConfig
from ..training.data import DATASETS, build_dataset, json_tuples
from ..training.record import RECORD_NAME
from ..training.trainer import StepInfo, TrainResult, train


EXIT_USAGE = 2


def fail(message: str) -> NoReturn:
    """End a command with one clear line on stderr and exit code 2 (bad input), no traceback."""
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(EXIT_USAGE)


def command_tokenizer(spec: str, model: CLIPSeg) -> Tokenizer:
    """`clipseg.factory.prompt_tokenizer` ('auto': the model's own), a bad vocabulary ending the
    command with one line."""
    from ..factory import prompt_tokenizer

    try:
        return prompt_tokenizer(model, spec)
    except ValueError as e:
        fail(str(e))


def load_weights(weights: str, backbone: str | None, device: str = "cpu") -> CLIPSeg:
    """`clipseg.load`, with a bad or missing file ending the command with one clear line."""
    from ..factory import load
    from ..weights import CheckpointError

    try:
        return load(weights, backbone=backbone, device=device)
    except CheckpointError as e:
        fail(f"cannot load weights '{weights}': {e}")
    except ValueError as e:  # the device
        fail(str(e))


def build_model(spec: ModelSpec, backbone: str | None, seed: int = 0, visual: str | None = None) -> CLIPSeg:
    """The model of an experiment; its CLIP backbone from `backbone` (CLIP weights: OpenAI
    .pt, open_clip, HF CLIPModel folder, or a CLIPSeg file whose `clip.*` part is used).
    spec.backbone "random": nothing is read; "clip-text" (ViTSeg): the visual tower is the
    ImageNet ViT `visual` (default spec.visual), or random without one. Random parts are
    drawn from `seed`, so that every rank and a resumed run get the same ones."""
    torch.manual_seed(seed)
    model = build_clipseg(spec.variant, **json_tuples(spec.decoder))
    if spec.backbone == "random":
        return model
    if backbone is None:
        fail("this experiment needs CLIP weights: pass --backbone (e.g. OpenAI's ViT-B-16.pt)")
    from ..weights import CheckpointError
    from ..weights.loader import assign_weights, read_backbone_for

    try:
        clip = read_backbone_for(model.config, backbone)  # checked before the model is built
    except CheckpointError as e:
        fail(f"cannot load the backbone '{backbone}': {e}")
    if spec.backbone == "clip-text":
        return _vitseg(model.config, clip.state_dict, clip.where, visual or spec.visual, seed)
    model = CLIPSeg(model.config)  # rebuilt with the backbone's dimensions
    assign_weights(model, clip.state_dict, clip.where, prefix="clip.")
    model.identity.backbone = str(backbone)  # a decoder-only export names it, and loads with it
    model.identity.tokenizer = clip.tokenizer  # a backbone's own vocabulary (the world CLIP's)
    return model


def _vitseg(config, clip_sd: dict, clip_where: str, visual: str | None, seed: int) -> CLIPSeg:
    """ViTSeg: CLIP's text tower from clip_sd, an ImageNet ViT (or a random one) as the visual tower."""
    from ..weights import CheckpointError, read_vit_backbone
    from ..weights.loader import assign_weights

    text = {k: v for k, v in clip_sd.items() if k.startswith("clip.text.")}
    vit_sd = None
    if visual is None:
        print("warning: ViTSeg without --visual-backbone: the visual tower is randomly initialised, so this is not "
              "the paper's baseline (pass timm vit_base_patch16_224 weights or google/vit-base-patch16-224)",
              file=sys.stderr)
        config.clip.vision = VisionConfig(**{**vars(config.clip.vision), "patch_bias": True, "pre_norm": False,
                                             "activation": "gelu", "norm_eps": 1e-6})
    else:
        try:
            vit_sd, config.clip.vision, _ = read_vit_backbone(visual)
        except CheckpointError as e:
            fail(f"cannot load the visual backbone '{visual}': {e}")
    torch.manual_seed(seed)  # the random parts (ViT proj, or the whole tower) as on every rank
    model = CLIPSeg(config)
    assign_weights(model, text, clip_where, prefix="clip.text.")
    if vit_sd is not None:
        with torch.no_grad():
            own = model.state_dict()
            for k, v in vit_sd.items():
                own[k].copy_(v)
    return model


def parse_overrides(pairs: Sequence[str]) -> dict:
    """["iterations=100", "amp=off"] -> {"iterations": 100, "amp": "off"} (values parsed as JSON if they can be)."""
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            fail(f"--set expects KEY=VALUE, got {pair!r}")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


@dataclass
class TrainArgs:
    """What `clipseg train` takes (see `clipseg.cli.train` for each option's meaning)."""

    config: str
    data: str = ""
    backbone: str | None = None
    visual_backbone: str | None = None
    init: str | None = None
    tokenizer: str = "auto"
    out_dir: str | None = None
    resume: bool = False
    set: Sequence[str] = ()
    no_progress: bool = False


def _train_config(exp: Experiment, args: TrainArgs) -> TrainConfig:
    """The experiment's train section with --set / --out-dir applied, every value type-checked."""
    overrides = parse_overrides(list(args.set))
    if args.out_dir:
        overrides["out_dir"] = args.out_dir
    try:
        return TrainConfig.from_dict({**exp.train.to_dict(), **overrides})
    except (ValueError, TypeError) as e:
        fail(f"bad training setting: {e}")


def _dataset(exp: Experiment, root: str, size: int) -> Dataset:
    """The experiment's data set at image size `size`; a missing folder or a bad list is one line."""
    name = exp.data.dataset
    if name != "world":
        if not root:
            fail(f"--data is required: the root folder of the '{name}' data set")
        if not Path(root).is_dir():
            fail(f"data folder '{root}' does not exist (or is not a folder)")
    try:
        return build_dataset(name, root, exp.data.split, exp.data.options, size)
    except (OSError, ValueError, TypeError, KeyError) as e:
        fail(f"cannot read the {name} data: {e}")


def _input_size(exp: Experiment, init: str | None) -> int:
    """The image size the model to be trained will take, known before it loads (an --init model
    that says otherwise has its data set rebuilt)."""
    if init:
        return CLIPSegConfig().input_size
    try:
        return variant_config(exp.model.variant).input_size
    except KeyError as e:
        fail(str(e).strip("'\""))


class _LossLines:
    """A line per `log_every` iterations on stderr when no progress bar is drawn (logs, pipes)."""

    def __init__(self, config: TrainConfig, enabled: bool):
        self.config, self.enabled, self.t0 = config, enabled, time.perf_counter()

    def __call__(self, step: StepInfo) -> None:
        if self.enabled and (step.iteration % self.config.log_every == 0 or step.iteration == self.config.iterations):
            print(f"iteration {step.iteration}/{self.config.iterations}  loss {step.loss:.4f}  lr {step.lr:.2e}  "
                  f"{time.perf_counter() - self.t0:.1f} s", file=sys.stderr, flush=True)


def _summary(result: TrainResult, exp: Experiment, args: TrainArgs) -> str:
    """What a run made and how to use it (printed on stdout at the end)."""
    losses = f"; loss {result.losses[0]:.4f} -> {result.losses[-1]:.4f}" if result.losses else ""
    span = f"iterations {result.start_iteration + 1}-{result.iteration}" if result.start_iteration else \
        f"{result.iteration} iterations"
    lines = [f"trained {span} in {result.seconds:.1f} s ({result.iterations_per_second:.2f} it/s){losses}"]
    if result.log:
        lines.append(f"log:      {result.log}")
    if result.exported:
        w = shlex.quote(str(result.exported))
        data = f" --dataset {exp.data.dataset} --data {shlex.quote(args.data)}" if args.data else ""
        lines += [f"weights:  {result.exported}",
                  f"segment:  clipseg segment IMAGE -p 'a prompt' --weights {w}",
                  f"evaluate: clipseg evaluate referring --weights {w}{data} --split none",
                  f"publish:  clipseg export-hf OUT_DIR --weights {w}"]
    else:
        lines.append("weights:  none exported (train.export = none); the checkpoint is "
                     f"{result.checkpoint}")
    return "\n".join(lines)


def run_train(args: TrainArgs) -> TrainResult:
    """Run an experiment file; returns the TrainResult (see `train`). Every input (experiment,
    settings, data, tokenizer) is checked before the model loads; a bad one ends the command
    with one `error:` line and exit status 2."""
    try:
        exp = Experiment.load(args.config)
    except (ValueError, OSError) as e:
        fail(str(e))
    exp.train = _train_config(exp, args)
    if exp.data.dataset not in DATASETS:
        fail(f"unknown data set '{exp.data.dataset}' in {args.config}; known: {', '.join(DATASETS)}")
    if args.tokenizer != "auto":
        from ..tokenizer import load_tokenizer

        try:
            load_tokenizer(args.tokenizer)  # a missing or bad vocabulary, before the model loads
        except ValueError as e:
            fail(str(e))
    size = _input_size(exp, args.init)
    dataset = _dataset(exp, args.data, size)
    if args.init:
        model = load_weights(args.init, args.backbone)
    else:
        model = build_model(exp.model, args.backbone, exp.train.seed, args.visual_backbone)
    tokenizer = command_tokenizer(args.tokenizer, model)
    if model.config.input_size != size:
        dataset = _dataset(exp, args.data, model.config.input_size)
    exp.init = args.init
    exp.trained = {"source": model.identity.source or "built from the model section",
                   "backbone": model.identity.backbone or args.backbone, "data": args.data or None,
                   "config": model.config.to_dict()}
    out_dir = Path(exp.train.out_dir)
    record = out_dir / RECORD_NAME
    main_rank = int(os.environ.get("RANK", "0")) == 0
    if main_rank and not (args.resume and record.exists()):
        out_dir.mkdir(parents=True, exist_ok=True)
        exp.save(record)  # a resumed run keeps the record of the run it continues
    bar = not args.no_progress and sys.stderr.isatty()
    try:
        result = train(model, dataset, exp.train, tokenizer, progress=bar, resume=args.resume,
                       on_step=_LossLines(exp.train, main_rank and not bar))
    except CheckpointMismatchError as e:
        fail(f"cannot resume: {e}")
    if main_rank:
        print(_summary(result, exp, args), flush=True)
    return result
