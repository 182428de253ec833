"""`clipseg world`: the generated-world pipeline (library: `clipseg.world`).

    clipseg world run [--preset full] [--cache-dir DIR] [--force] [--json OUT] [--ship DIR]
    clipseg world demo "a photo of a red star." --out star.png [--scene-seed 3]
"""

from __future__ import annotations

import json
import sys
import time

import click

PRESET_NAMES = ("full", "tiny")


def _config(preset: str, threads: int | None):
    from ..world.config import world_config

    return world_config(preset, **({"threads": threads} if threads is not None else {}))


_preset = click.option("--preset", default="full", show_default=True, type=click.Choice(PRESET_NAMES),
                       help="settings: 'full' made the shipped models (about 2.5 hours on 2 CPU cores), 'tiny' seconds.")
_cache = click.option("--cache-dir", default=None, metavar="DIR",
                      help="model cache (default $CLIPSEG_WORLD_CACHE or ~/.cache/clipseg/world).")
_threads = click.option("--threads", type=int, default=None, help="torch threads (default: the preset's).")
_quiet = click.option("--quiet", is_flag=True, help="no progress lines.")


@click.group()
def world() -> None:
    """The generated world: pretrain a small CLIP, train CLIPSeg and the baselines on generated
    scenes, evaluate with the paper's metrics (95 % bootstrap intervals), ship the models."""


@world.command()
@_preset
@_cache
@_threads
@_quiet
@click.option("--force", is_flag=True, help="recompute every stage.")
@click.option("--json", "json_out", default=None, metavar="OUT", help="also write the result as JSON here.")
@click.option("--ship", default=None, metavar="DIR",
              help="write the first fold's models, the demo example and the model card to DIR "
                   "(the package's own: src/clipseg/assets/world).")
def run(preset, cache_dir, threads, quiet, force, json_out, ship):
    """Run (or load from the cache) every stage and print the tables."""
    from ..world.pipeline import run_pipeline

    config = _config(preset, threads)
    t0 = time.perf_counter()
    result = run_pipeline(config, progress=not quiet, cache_dir=cache_dir, force=force)
    click.echo(result.table)
    stages = ", ".join(f"{k} {v:.0f} s" for k, v in result.timings.items())
    click.echo(f"\nwall time {time.perf_counter() - t0:.0f} s" + (f" ({stages})" if stages else " (all cached)"))
    if json_out:
        with open(json_out, "w", encoding="utf-8") as f:
            json.dump(result.to_dict(), f, indent=1)
    if ship:
        from ..world.ship import ship as ship_files

        ship_files(result, config, ship, cache_dir, progress=not quiet)


@world.command()
@click.argument("prompt")
@_preset
@_cache
@_threads
@_quiet
@click.option("--out", default="world_demo.png", show_default=True)
@click.option("--scene-seed", default=0, show_default=True, type=int)
@click.option("--image", default=None, type=click.Path(exists=True, dir_okay=False),
              help="segment this image instead of a generated scene.")
@click.option("--model", default="clipseg", show_default=True,
              type=click.Choice(["clipseg", "clip-deconv", "clipseg-random"]))
@click.option("--threshold", default=None, type=click.FloatRange(0, 1),
              help="mask threshold (default: the model's own; 0.5 for a cached model that names none).")
def demo(prompt, preset, cache_dir, threads, quiet, out, scene_seed, image, model, threshold):
    """Segment a generated scene by PROMPT: with the shipped models for the full preset, else with the
    preset's models from the cache (trained first if missing)."""
    from ..world.pipeline import segment_demo

    result = segment_demo(prompt, out, scene_seed=scene_seed, config=_config(preset, threads), cache_dir=cache_dir,
                          progress=not quiet, model=model, threshold=threshold, image=image,
                          shipped=preset == "full" and cache_dir is None)
    if result.unknown_words:
        click.echo(f"warning: words outside the world's vocabulary: {', '.join(result.unknown_words)}", err=True)
    if result.objects:
        click.echo(f"scene {result.scene_seed}: " + "; ".join(result.objects))
    click.echo(f"'{result.prompt}': {100 * result.foreground:.1f} % of pixels above {result.threshold} -> {result.path}")


def main(argv: list[str] | None = None) -> int:
    """`clipseg world ...`: the same commands."""
    try:
        world.main(args=argv, prog_name="clipseg world", standalone_mode=False)
    except click.exceptions.Exit as e:
        return int(e.exit_code or 0)
    except click.ClickException as e:
        e.show()
        return e.exit_code
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
