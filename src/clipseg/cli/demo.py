"""`clipseg demo`: the main job of `make demo`.

With real weights (--weights, $CLIPSEG_WEIGHTS, or CIDAS/clipseg-rd64-refined from the hub or
its cache) it segments the shipped photograph (a CC0 coffee cup, `clipseg/assets/photos`) by
prompts that fit it. Without them (offline, nothing on disk) it says so in one line and how to
get them, and runs the embedded world model (`load_clipseg("world")`, shipped with the package,
no training) on the shipped example scene with a seen class, a held-out class, a generalized
prompt, a visual prompt and an absent class. Either way it writes one figure (image, one
overlay per prompt, a legend) and prints whether each prompt is present.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import click

PHOTO_PROMPTS = ("a cup of coffee", "a spoon", "a saucer", "a wooden table", "a dog")


def _world_example():
    """The shipped example scene, its prompts and a note per prompt."""
    from PIL import Image

    from ..prompts import VisualPrompt
    from ..weights.registry import ASSETS_DIR

    folder = ASSETS_DIR / "world"
    example = json.loads((folder / "example.json").read_text())
    image = Image.open(folder / "example-scene.png").convert("RGB")
    prompts, names, notes = [], [], []
    for p in example["prompts"]:
        if "text" in p:
            prompts.append(p["text"])
            names.append(p["text"])
        else:
            prompts.append(VisualPrompt(Image.open(folder / p["support"]).convert("RGB"),
                                        Image.open(folder / p["mask"])))
            names.append("<visual prompt>")
        notes.append(p["kind"])
    return image, prompts, names, notes


@click.command()
@click.option("--prompt", "-p", "prompts", multiple=True,
              help="a text prompt (repeat for several; default: prompts that fit the example image).")
@click.option("--image", default=None, type=click.Path(exists=True, dir_okay=False),
              help="image to segment (default: the shipped photo, or the world's example scene).")
@click.option("--weights", "-w", default=None, help="real weights (default: $CLIPSEG_WEIGHTS, else the hub model).")
@click.option("--out", "-o", default="clipseg-demo.png", show_default=True, type=click.Path(dir_okay=False))
@click.option("--world", "world_only", is_flag=True, help="use the embedded world model even if real weights exist.")
@click.option("--threshold", default=None, type=click.FloatRange(0, 1),
              help="mask threshold (default: the model's own; the world models carry their best, 0.22).")
def demo(prompts: tuple[str, ...], image: str | None, weights: str | None, out: str, world_only: bool,
         threshold: float) -> None:
    """Segment an example image and write a figure with a legend (real weights if there are any,
    else the embedded world model; no download, no training)."""
    from PIL import Image

    from ..io.image_io import load_image
    from ..inference import Predictor, is_present
    from ..inference.figure import result_figure
    from ..factory import fallback_notice, load
    from ..prompts.text import unknown_words, unknown_words_warning
    from ..weights import CheckpointError
    from ..weights.registry import ASSETS_DIR, WORLD_WEIGHTS

    start = time.perf_counter()
    try:
        model = load(WORLD_WEIGHTS if world_only else weights, device="auto", fallback_to_world=True)
    except CheckpointError as e:
        raise click.ClickException(f"cannot load weights '{weights}': {e}") from None
    notice = fallback_notice(model)
    if notice:
        click.echo(f"note: {notice}")
    is_world = model.identity.weights == WORLD_WEIGHTS
    notes: list[str] | None = None
    if image is None and not prompts and is_world:
        picture, prompt_list, names, notes = _world_example()
    else:
        default = ASSETS_DIR / ("world/example-scene.png" if is_world else "photos/coffee.jpg")
        picture = load_image(image) if image else Image.open(default).convert("RGB")
        prompt_list = list(prompts) if prompts else ([] if is_world else list(PHOTO_PROMPTS))
        if not prompt_list:
            raise click.UsageError("give --prompt with --image for the world model")
        names = list(prompt_list)
    predictor = Predictor(model, truncate_prompts=True, threshold=threshold, warn_unknown_words=False)  # said below
    threshold = predictor.threshold
    warning = unknown_words_warning(unknown_words(predictor.tokenizer, [p for p in prompt_list if isinstance(p, str)]))
    if warning:
        click.echo(f"warning: {warning}", err=True)
    predictor.set_image(picture)
    probs = predictor.predict(prompt_list)
    out_path = Path(out)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    result_figure(picture, probs, names, threshold, notes=notes).save(out_path)
    click.echo(f"weights: {model.identity.source}")
    for k, (name, prob) in enumerate(zip(names, probs)):
        kind = f" [{notes[k]}]" if notes else ""
        present = "present" if is_present(prob, threshold) else "not present"
        click.echo(f"  {k + 1}. {name}{kind}: {present} ({100 * float((prob >= threshold).mean()):.1f} % of pixels)")
    click.echo(f"figure -> {out_path} (masks at threshold {threshold:g}; {time.perf_counter() - start:.1f} s)")
