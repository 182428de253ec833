"""`clipseg demo`: the main job of `make demo`.

With real weights (--weights, $CLIPSEG_WEIGHTS, or CIDAS/clipseg-rd64-refined from the hub
or its cache) it segments an example image and writes an overlay. Without them (offline,
nothing on disk) it says so, says how to get them, and runs the project's own
generated-world model instead (trained once on this machine, then cached).
"""

from __future__ import annotations

from pathlib import Path

import click
from PIL import Image

from ..weights.fetch import OFFLINE_HINT

DEFAULT_PROMPT = "a red circle"


def example_image(seed: int = 0, size: int = 352) -> Image.Image:
    """A generated scene (coloured shapes on a background) as the example image."""
    from ..data.world import SceneConfig, generate_scene

    return Image.fromarray(generate_scene(seed, SceneConfig(image_size=size)).image)


def _real_weights_demo(loaded, prompt: str, image_path: str | None, out: Path) -> None:
    from ..data.image_io import load_image
    from ..inference import Predictor, is_present
    from ..inference.outputs import overlay_image

    image = load_image(image_path) if image_path else example_image()
    predictor = Predictor(loaded.model)
    predictor.set_image(image)
    prob = predictor.predict([prompt])[0]
    out.parent.mkdir(parents=True, exist_ok=True)
    overlay_image(image, prob[None]).save(out)
    present = "present" if is_present(prob, 0.5) else "not present"
    click.echo(f"weights: {loaded.source}")
    click.echo(f"'{prompt}': {100 * float((prob >= 0.5).mean()):.1f} % of pixels above 0.5 ({present}) -> {out}")


@click.command()
@click.option("--prompt", "-p", default=DEFAULT_PROMPT, show_default=True, help="what to segment.")
@click.option("--image", default=None, type=click.Path(exists=True, dir_okay=False),
              help="image to segment (default: a generated example scene).")
@click.option("--weights", "-w", default=None, help="real weights (default: $CLIPSEG_WEIGHTS, else the hub model).")
@click.option("--out", "-o", default="clipseg-demo.png", show_default=True, type=click.Path(dir_okay=False))
@click.option("--world-only", is_flag=True, help="skip real weights; run the generated-world model.")
@click.option("--quiet", is_flag=True, help="no progress bars.")
def demo(prompt: str, image: str | None, weights: str | None, out: str, world_only: bool, quiet: bool) -> None:
    """Segment an example image: with real weights if there are any, else with the built-in
    generated-world model (trained on first use, about 7 minutes on 2 CPU cores, then cached)."""
    from ..inference.loading import default_weights, load_model
    from ..weights import CheckpointError

    out_path = Path(out)
    if not world_only:
        try:
            loaded = load_model(weights, "auto")
        except CheckpointError as e:
            if weights:  # the user named weights: that is an error, not a fallback
                raise click.ClickException(f"cannot load weights '{weights}': {e}") from None
            click.echo(f"No real weights available ('{default_weights()}': {str(e).split('. No network?')[0]}).")
            click.echo(f"To use them: {OFFLINE_HINT}\n")
        else:
            _real_weights_demo(loaded, prompt, image, out_path)
            return
    click.echo("Running the generated-world model (a small CLIP + CLIPSeg trained on generated scenes).")
    from ..world.pipeline import segment_demo

    result = segment_demo(prompt, str(out_path), progress=not quiet, image=image)
    if result.unknown_words:
        click.echo(f"note: words outside the world's vocabulary: {', '.join(result.unknown_words)}")
    if result.objects:
        click.echo(f"scene {result.scene_seed}: " + "; ".join(result.objects))
    click.echo(f"'{result.prompt}': {100 * result.foreground:.1f} % of pixels above {result.threshold} -> {result.path}")
    click.echo(f"(Real weights: {OFFLINE_HINT.split('Without real weights')[0].strip()})")
