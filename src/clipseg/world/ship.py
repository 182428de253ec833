"""Stage 4 of the world pipeline: the trained models of the first fold as the files shipped in
`clipseg/assets/world`, the example the demo segments, and the model card.

    clipseg world run --preset full --ship src/clipseg/assets/world

Files written (all safetensors carry the world's word tokenizer, so `load_clipseg("world")` and
the command line need nothing else):

- `clip.safetensors`: the pretrained world CLIP (format "clipseg-clip"), the backbone of
- `clipseg.safetensors`, `clip-deconv.safetensors`: decoder-only CLIPSeg files;
- `clipseg-random.safetensors`: the random-backbone baseline, backbone included;
- `example-scene.png`, `example-support.png`, `example-support-mask.png`, `example.json`:
  a scene of the evaluation world and the demo's prompts for it, chosen by content only
  (the first seed whose scene holds a seen and a held-out class and a generalized group);
- `MODEL_CARD.md`: settings, seed, steps, times, machine, the tables, sha256 of every file.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ..worldgen import SHAPE_CLASSES, SHAPE_GROUPS, generate_scene
from ..model.identity import ModelIdentity
from ..weights.native import save_clip
from ..weights.registry import PRETRAINED, WORLD_MODELS
from .config import MODEL_LABELS, WorldPipelineConfig
from .runlog import machine

# model name -> file name in assets/world, as the registry lists them
SHIPPED = {name: Path(PRETRAINED[entry].location).name for name, entry in WORLD_MODELS.items()}
CLIP_SHIPPED = Path(PRETRAINED["world-clip"].location).name
EXAMPLE_SEED_RANGE = (95_000_000, 95_001_000)  # disjoint from every training and evaluation seed


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def example_prompts(config: WorldPipelineConfig) -> dict[str, Any]:
    """The demo's scene and prompts: a seen class, a held-out class, a generalized group, a visual
    prompt of the held-out class (from another scene), and a class absent from the scene. The
    scene is the first of its seed range that holds such classes, 3-4 objects of distinct
    classes, all of them large (chosen by content only, never by how a model does on it)."""
    seen, unseen = set(config.split.seen_classes()), set(config.split.unseen_classes())
    scene_config = config.scene
    for seed in range(*EXAMPLE_SEED_RANGE):
        scene = generate_scene(seed, scene_config)
        shapes = [o.shape for o in scene.objects]
        if len(set(shapes)) != len(shapes) or not 3 <= len(shapes) <= 4 or any(o.size != "large" for o in scene.objects):
            continue
        s = [c for c in shapes if c in seen]
        u = [c for c in shapes if c in unseen]
        groups = [g for g, members in SHAPE_GROUPS.items() if len(set(members) & set(shapes)) == 1]
        if s and u and groups:
            break
    else:  # pragma: no cover - the range holds many such scenes
        raise RuntimeError("no example scene found")
    support_seed = next(k for k in range(EXAMPLE_SEED_RANGE[1], EXAMPLE_SEED_RANGE[1] + 1000)
                        if any(o.shape == u[0] for o in generate_scene(k, scene_config, (u[0], s[0])).objects))
    absent = next(c for c in SHAPE_CLASSES if c in seen and c not in shapes)
    return {
        "scene_seed": seed, "support_seed": support_seed,
        "objects": [f"{o.size} {o.texture} {o.colour} {o.shape}" for o in scene.objects],
        "prompts": [
            {"text": f"a photo of a {s[0]}.", "kind": "seen class", "present": True},
            {"text": f"a photo of a {u[0]}.", "kind": "held-out class (zero-shot)", "present": True},
            {"text": groups[0], "kind": "generalized prompt", "present": True},
            {"support": "example-support.png", "mask": "example-support-mask.png", "kind":
             f"visual prompt: a {u[0]} from another scene (one-shot)", "present": True},
            {"text": f"a photo of a {absent}.", "kind": "absent class", "present": False},
        ],
    }


def write_example(config: WorldPipelineConfig, out: Path) -> dict[str, Any]:
    """The demo's files (the demo draws masks at the shipped model's own threshold)."""
    example = example_prompts(config)
    scene = generate_scene(example["scene_seed"], config.scene)
    Image.fromarray(scene.image).save(out / "example-scene.png")
    cls = example["prompts"][1]["text"].split()[-1].rstrip(".")
    support = generate_scene(example["support_seed"], config.scene, (cls, config.split.seen_classes()[0]))
    obj = next(o for o in support.objects if o.shape == cls)
    Image.fromarray(support.image).save(out / "example-support.png")
    Image.fromarray(obj.mask.astype(np.uint8) * 255).save(out / "example-support-mask.png")
    (out / "example.json").write_text(json.dumps(example, indent=1) + "\n")
    return example


def ship(result, config: WorldPipelineConfig, out_dir: str | Path, cache_dir: str | Path | None = None,
         progress: bool = True) -> list[Path]:
    """Write the shipped files of fold `config.eval_folds[0]` (see the module docstring) to `out_dir`."""
    from ..weights.loader import save_clipseg
    from .clip_stage import pretrained_clip
    from .decoder_stage import trained_model
    from .runlog import log

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    fold_config = config.for_fold(config.eval_folds[0])
    clip, tokenizer, clip_info = pretrained_clip(config, cache_dir, progress)
    vocab = tokenizer.to_json()
    # the pretraining's time and accuracy travel too: a cache seeded from this file keeps them
    meta = {"world_config": config.to_dict(),
            **{k: clip_info[k] for k in ("seconds", "accuracy", "machine") if k in clip_info}}
    save_clip(clip, out / CLIP_SHIPPED, meta, tokenizer=vocab)
    infos = {}
    best_t = {r["model"]: r["referring"]["t"] for r in result.rows}  # each model's best referring threshold
    for name, file in SHIPPED.items():
        model, infos[name] = trained_model(name, fold_config, clip, tokenizer, cache_dir, progress)
        model.identity = ModelIdentity(tokenizer=tokenizer, threshold=best_t[name], backbone="world-clip")
        save_clipseg(model, out / file, decoder_only=name != "clipseg-random")
    example = write_example(fold_config, out)
    files = [out / CLIP_SHIPPED, *(out / f for f in SHIPPED.values())]
    card = model_card(result, config, clip_info, infos, files, example)
    (out / "MODEL_CARD.md").write_text(card)
    log(progress, f"[world] shipped {len(files)} model files ({sum(f.stat().st_size for f in files) / 1e6:.1f} MB) "
                  f"and the model card to {out}")
    return files


def card_hashes(card: str) -> dict[str, str]:
    """{file name: sha256} from a model card's table of files."""
    out = {}
    for line in card.splitlines():
        parts = [p.strip(" `") for p in line.strip().strip("|").split("|")]
        if len(parts) == 3 and parts[0].endswith(".safetensors") and len(parts[2]) == 64:
            out[parts[0]] = parts[2]
    return out


def model_card(result, config: WorldPipelineConfig, clip_info: dict, infos: dict, files: list[Path],
               example: dict) -> str:
    acc = result.clip_accuracy
    fold = str(config.eval_folds[0])
    here = machine()
    lines = [
        "# The generated world's models (shipped with clipseg)",
        "",
        "Trained by this project's own code on its generated scene world (`clipseg.worldgen`), offline, on CPU,",
        "by one command: `clipseg world run --preset full --ship src/clipseg/assets/world`.",
        "They know only that world (44 shape classes, 11 colours, 4 textures; see docs/world.md), nothing of",
        "real photographs. Load with `load_clipseg(\"world\")` (the tokenizer travels in the files).",
        "",
        f"- machine: {here} (decoders, evaluation)"
        + (f"; the CLIP was pretrained on {clip_info['machine']}" if clip_info.get("machine", here) != here else ""),
        f"- seed: {config.seed}; held out of segmentation training: fold {fold} "
        f"({', '.join(config.for_fold(int(fold)).split.unseen_classes())})",
        f"- CLIP: ViT code path of ViT-B/16, patch {config.patch_size}, width {config.vision_width}, "
        f"{config.vision_layers} vision / {config.text_layers} text layers; pretrained {config.pretrain_steps} steps of "
        f"{config.pretrain_batch} ({'bf16 autocast' if config.pretrain_precision == 'bf16' else 'float32'}, lr {config.pretrain_lr:g}, cosine) in "
        f"{clip_info.get('seconds', 0) / 60:.0f} min",
    ]
    for name, info in infos.items():
        lines.append(f"- {MODEL_LABELS[name]}: {info.get('iterations')} iterations of {config.train_batch} in "
                     f"{info.get('seconds', 0) / 60:.1f} min, loss {info.get('first_loss', float('nan')):.3f} -> "
                     f"{info.get('final_loss', float('nan')):.3f}")
    lines += ["", f"Training and evaluation time, summed over the stages: {result.compute_seconds / 60:.0f} min.", "",
              "## Files", "", "| file | bytes | sha256 |", "|---|---|---|"]
    lines += [f"| `{f.name}` | {f.stat().st_size} | `{sha256(f)}` |" for f in files]
    lines += ["", "## Zero-shot classification by the world CLIP", "",
              f"Close-ups of single objects among all {len(SHAPE_CLASSES)} classes (\"a photo of a {{}}.\", "
              f"30 per class): all {100 * acc['views_all']:.1f} %, held-out fold {fold} {100 * acc['views_held_out']:.1f} %; "
              f"colours among 11: {100 * acc['colour']:.1f} %.", "",
              "| class | close-ups | | class | close-ups |", "|---|---|---|---|---|"]
    classes = list(acc["views"].items())
    half = (len(classes) + 1) // 2
    for (a, va), right in zip(classes[:half], classes[half:] + [("", None)]):
        b, vb = right
        lines.append(f"| {a} | {100 * va:.0f} % | | {b} | {'' if vb is None else f'{100 * vb:.0f} %'} |")
    lines += ["", "## Segmentation (paper metrics, 95 % bootstrap intervals)", "", "```", result.table, "```", "",
              "## The demo's example", "", f"Scene seed {example['scene_seed']}: " + "; ".join(example["objects"]), ""]
    return "\n".join(lines) + "\n"
