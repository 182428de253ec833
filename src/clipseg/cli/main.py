"""The `clipseg` command line.

    clipseg segment photo.jpg -p "a cat" -p "a sofa" --mask --overlay -o out/
    clipseg segment photos/ -p "a dog" --prob npy --rle -o out/          # recursive, resumable
    clipseg segment photo.jpg --support example.jpg --support-mask example_mask.png --mask
    clipseg segment photo.jpg -p "a cat" --support ex.jpg --support-mask ex_mask.png --text-weight 0.5
    clipseg info --weights clipseg-rd64-refined/
    clipseg serve --port 8000
    clipseg demo [--prompt P]          # real weights if any, else the generated-world model
    clipseg export-onnx out_dir/ | world ... | train ... | evaluate ...

Exit codes: 0 success; 1 some images failed (listed at the end); 2 bad usage, prompts or
weights (one clear message, no traceback).
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

import click

from ..weights.registry import DEFAULT_WEIGHTS, ENV_WEIGHTS, RANDOM_PREFIX, default_weights, model_names
from .demo import demo as demo_command
from .train import evaluate as evaluate_command
from .train import train as train_command
from .world import world as world_group

EXIT_FAILED_ITEMS = 1
EXIT_USAGE = 2

_WEIGHTS_HELP = (f"model weights: a known name ({', '.join(model_names())}), another hub repo id, a Hugging Face folder, "
                 f"the authors' .pth (with --backbone) or a .safetensors saved by clipseg; default ${ENV_WEIGHTS} if "
                 f"set, else {DEFAULT_WEIGHTS} (the shipped 'world' model when that cannot be had). "
                 f"'{RANDOM_PREFIX}[:SEED]' = small random model for tests.")


class CLIError(click.ClickException):
    """A clear one-line failure: printed as 'Error: ...', exit code 2, no traceback."""

    exit_code = EXIT_USAGE


def _threads_option(f):
    return click.option("--threads", default=None, type=click.IntRange(1, 1024), metavar="N",
                        help="CPU threads of torch (default: torch's choice; 1 is fastest for small models "
                             "on a busy machine).")(f)


def _set_threads(n: int | None) -> None:
    if n:
        import torch

        torch.set_num_threads(n)


def _weights_option(f):
    f = click.option("--backbone", default=None, metavar="PATH",
                     help="CLIP backbone for decoder-only weights (OpenAI ViT-B-16.pt).")(f)
    f = click.option("--device", default="auto", show_default=True,
                     help="auto (CUDA if present, else MPS, else CPU), cpu, cuda, cuda:N or mps.")(f)
    f = click.option("--weights", "-w", default=None, metavar="WEIGHTS", help=_WEIGHTS_HELP)(f)
    return f


def _dtype_option(f):
    return click.option(
        "--dtype", default="float32", show_default=True, type=click.Choice(["float32", "bfloat16", "float16"]),
        help="parameter dtype. bfloat16: about 3.5x faster on CPUs with AMX/AVX512-BF16, masks within "
             "IoU 0.99 of float32; float16: GPUs only.")(f)


def _load(weights: str | None, device: str, backbone: str | None = None, dtype: str = "float32",
          fallback: bool = True, announce: bool = True):
    """`clipseg.load`; with `fallback`, the embedded world model when no weights were named and
    the default ones cannot be had (said in one line on stderr)."""
    from ..factory import dtype_notice, fallback_notice, load
    from ..weights import CheckpointError

    try:
        model = load(weights, device=device, dtype=dtype, backbone=backbone, fallback_to_world=fallback)
        param = next(model.parameters())
        for notice in (fallback_notice(model), dtype_notice(param.dtype, param.device)):
            if notice and announce:
                click.echo(f"note: {notice}", err=True)
        return model
    except CheckpointError as e:
        raise CLIError(f"cannot load weights '{weights or default_weights()}': {e}") from None
    except ValueError as e:  # device, dtype
        raise CLIError(str(e)) from None
    except (OSError, RuntimeError) as e:
        raise CLIError(f"cannot load weights '{weights or default_weights()}': {type(e).__name__}: {e}") from None


def _onnx_predictor(weights: str | None, tokenizer: str, keep_aspect: bool, threads: int | None):
    """An OnnxPredictor on the export directory `weights`, and the name prompts.json records."""
    if not weights or not Path(weights).is_dir():
        raise CLIError("--backend onnx needs --weights DIR, a folder written by `clipseg export-onnx`")
    if keep_aspect:
        raise CLIError("--keep-aspect needs the PyTorch backend: an ONNX export has a fixed input size")
    try:
        from ..export.onnx_predictor import OnnxPredictor

        predictor = OnnxPredictor(weights, _tokenizer(tokenizer), threads=threads)
    except ImportError as e:
        raise CLIError(f"--backend onnx needs onnxruntime ({e.name} missing): pip install 'clipseg[onnxruntime]'") from None
    except ValueError as e:
        raise CLIError(f"cannot use the ONNX export '{weights}': {e}") from None
    return predictor, f"onnx:{Path(weights).resolve()}"


def _float16():
    import torch

    return torch.float16


def _tokenizer(spec: str):
    """A tokenizer other than the model's own: 'clip', or a word-tokenizer vocabulary JSON;
    None for 'auto' (the model's own)."""
    from ..tokenizer import load_tokenizer

    if spec == "auto":
        return None
    try:
        return load_tokenizer(spec)
    except ValueError as e:
        raise CLIError(str(e)) from None


def _predictor(model, tokenizer: str, **kwargs):
    """Predictor(model) with the --tokenizer choice; a tokenizer that does not fit the model is one line."""
    from ..inference import Predictor

    try:
        return Predictor(model, _tokenizer(tokenizer), **kwargs)
    except ValueError as e:
        raise CLIError(str(e)) from None


_TOKENIZER_HELP = "auto (the model's own: the one its weights carry, else CLIP's), 'clip', or a word-tokenizer vocabulary JSON."
_THRESHOLD_HELP = "probability threshold of masks, overlays, outlines and RLE (default: the model's own, 0.5 unless its weights name one)."


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.version_option(package_name="clipseg", prog_name="clipseg")
def cli():
    """CLIPSeg: segment images by text or example-image prompts."""


# ---------------------------------------------------------------- segment


@cli.command()
@click.argument("inputs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--prompt", "-p", "prompts", multiple=True, help="a text prompt (repeat for several).")
@click.option("--prompts-file", type=click.Path(exists=True, dir_okay=False, allow_dash=True, path_type=Path),
              help="text prompts, one per line ('-' = standard input).")
@click.option("--name", "named", multiple=True, metavar="KEY=PROMPT",
              help="a text prompt whose output files are named KEY (lower-case letters, digits, _) instead of the "
                   "prompt's readable form plus a hash: --name cat='the cat on the left' writes FILE.cat.mask.png.")
@click.option("--support", "supports", multiple=True, type=click.Path(path_type=Path),
              help="visual prompt: an example image (pair with --support-mask; repeatable).")
@click.option("--support-mask", "support_masks", multiple=True, type=click.Path(path_type=Path),
              help="visual prompt: mask of the object in the example image (nonzero = object).")
@click.option("--text-weight", default=None, type=float, metavar="W",
              help="mix the visual prompt into each text prompt: cond = W*text + (1-W)*visual, 0 <= W <= 1 "
                   "(paper Sec. 3.2); needs one --support/--support-mask pair; outputs are named TEXT+visual.")
@click.option("--out", "-o", "out_dir", default="clipseg-out", show_default=True, type=click.Path(path_type=Path),
              help="output folder (mirrors the input folders); '-': write the one output file (one image, one "
                   "prompt, one output: a PNG, or the JSON of --rle / --regions) to standard output.")
@click.option("--prob", "prob_format", type=click.Choice(["png", "npy"]), default=None,
              help="write probability maps: 16-bit PNG or float32 .npy.")
@click.option("--mask/--no-mask", "want_mask", default=True, show_default=True,
              help="mask PNG per prompt (8-bit; soft edges with --feather), written beside any other output.")
@click.option("--overlay", is_flag=True, help="colour overlay of all prompts on the image, outlined, with a legend strip.")
@click.option("--legend/--no-legend", default=True, show_default=True,
              help="--overlay: the strip below the image naming each prompt's colour (without it the overlay has "
                   "the image's size).")
@click.option("--labels", is_flag=True, help="label map PNG (palette; pixel value k = prompt k, 0 = none).")
@click.option("--rle", is_flag=True, help="COCO RLE JSON of the masks.")
@click.option("--cutout", is_flag=True, help="RGBA cut-out per prompt (FILE.KEY.cutout.png): alpha = the (feathered) mask.")
@click.option("--regions", is_flag=True, help="the mask's connected regions per prompt (FILE.KEY.regions.json): "
                                              "boxes, areas and crop boxes with --region-padding of context.")
@click.option("--negative", "negatives", multiple=True, metavar="PROMPT",
              help="subtracted from every prompt: (prompt) - (neg1 | neg2 ...) (repeatable). A prompt may itself be "
                   "an expression: 'a cat | a dog', 'a person - a hat', 'a & b', parentheses; operators need a space "
                   "on each side, a term in double quotes is literal.")
@click.option("--grow", default=0.0, type=float, metavar="PX",
              help="grow the masks by a disk of PX pixels of the image (negative: shrink).")
@click.option("--feather", default=0.0, type=float, metavar="PX", help="soft mask edge of PX pixels (8-bit mask PNGs, cut-out alpha).")
@click.option("--smooth", default=0.0, type=float, metavar="PX",
              help="Gaussian blur (standard deviation PX pixels) of the probability map before the threshold.")
@click.option("--invert", is_flag=True, help="invert the masks (everything but the object).")
@click.option("--fill-holes", is_flag=True, help="fill the holes of the masks.")
@click.option("--min-area", default=0, type=int, metavar="PX", help="drop mask regions of fewer than PX pixels.")
@click.option("--refine", is_flag=True, help="edge-aware refinement: the maps follow the image's edges at full "
                                             "resolution (a fast guided filter; an absent answer stays absent).")
@click.option("--tiles", default=None, metavar="N|auto",
              help="large images: also run overlapping crops (N along the longer side, or auto from the image's size), "
                   "blended and gated by the whole-image pass.")
@click.option("--temporal", default=1, show_default=True, type=click.IntRange(1, 1000), metavar="W",
              help="videos: average each prompt's probabilities over the last W frames (1 = off).")
@click.option("--video-out", is_flag=True, help="videos: also write a mask video per prompt (VIDEO.KEY.mask.mp4; "
                                                "the frames' masks are written too).")
@click.option("--region-padding", default=16, show_default=True, type=int, metavar="PX",
              help="--regions: context around each region's crop box.")
@click.option("--region-order", default="area", show_default=True, type=click.Choice(["area", "left-to-right"]),
              help="--regions: largest first, or left to right.")
@click.option("--threshold", "-t", default=None, type=click.FloatRange(0.0, 1.0), help=_THRESHOLD_HELP)
@click.option("--none-threshold", default=None, type=click.FloatRange(0.0, 1.0),
              help="label maps: below this max probability a pixel is 0 (default: --threshold).")
@click.option("--recursive/--no-recursive", default=True, show_default=True, help="walk sub-folders.")
@click.option("--overwrite", is_flag=True, help="recompute images whose outputs exist (default: skip them, resumable).")
@click.option("--keep-aspect", is_flag=True, help="feed the image at its aspect ratio instead of squashing it.")
@click.option("--tokenizer", default="auto", show_default=True, help=_TOKENIZER_HELP)
@click.option("--max-pixels", default=None, type=click.IntRange(1), metavar="N",
              help="refuse images larger than this many pixels (default: the library's 64 Mpx).")
@click.option("--progress/--no-progress", default=None, help="progress bar (default: on a terminal).")
@click.option("--json", "as_json", is_flag=True,
              help="print the run's summary as JSON on stdout, with every image's output files and each prompt's "
                   "present / area_fraction.")
@click.option("--batch-size", default=8, show_default=True, type=click.IntRange(1, 1024),
              help="images per backbone pass.")
@click.option("--workers", default=None, type=click.IntRange(0, 64), metavar="N",
              help="processes decoding images ahead of the model (default: 2, 0 for a single image).")
@click.option("--backend", type=click.Choice(["torch", "onnx"]), default="torch", show_default=True,
              help="onnx: run an export of `clipseg export-onnx` (--weights DIR) on onnxruntime.")
@click.option("--amp/--no-amp", default=True, show_default=True,
              help="float16 autocast on CUDA (float32 parameters; no effect on CPU).")
@_threads_option
@_weights_option
@_dtype_option
def segment(inputs, prompts, prompts_file, named, supports, support_masks, text_weight, out_dir, prob_format, want_mask,
            overlay, legend, labels, rle, cutout, regions, negatives, grow, feather, smooth, invert, fill_holes, min_area,
            refine, tiles, temporal, video_out, region_padding, region_order, threshold, none_threshold, recursive, overwrite, keep_aspect, tokenizer, max_pixels,
            progress, as_json, batch_size, workers, backend, amp, threads, weights, device, backbone, dtype):
    """Segment images (files, folders, or '-' for one image on standard input) and videos (files
    named here: every frame, in VIDEO.frames/) by text and/or visual prompts.

    Under `torchrun --nproc_per_node N clipseg segment ...` (or several nodes) each rank takes
    every N-th image of the sorted list on its own device (cuda:LOCAL_RANK with --device auto);
    the union of the outputs is the single-process run's.

    Outputs per image in OUT (default: masks): FILE.KEY.mask.png, FILE.KEY.prob.png|npy,
    FILE.KEY.cutout.png, FILE.KEY.regions.json per prompt and FILE.SET.overlay.png, FILE.SET.labels.png, FILE.SET.rle.json for all prompts together, where
    FILE is the image's file name, KEY the prompt (plain words) or its readable form plus a hash, and
    SET a hash of the prompt list; OUT/prompts.json says what each KEY and SET is. Several inputs
    each get a folder of their own in OUT.
    """
    from ..editing import MaskOptions, MaskOptionsError
    from ..io.image_io import ImageError
    from ..prompts import PromptError, VisualPrompt
    from ..prompts.assembly import CLI_FIELDS, assemble
    from ..prompts.expression import plan_prompts, text_terms
    from ..runs.folder import Segmenter, SegmentOptions, SettingsConflict, gather_summaries
    from ..runs.loader import shard_from_env

    from .inputs import MAX_PROMPTS, check_prompt_count, read_prompt_lines, read_stdin_image

    given = list(inputs)  # as named ('-' before standard input is read)
    texts = list(prompts)
    aliases = _aliases(named)
    texts += [p for p, _ in aliases if p not in texts]
    stream = str(out_dir) == "-"
    _check_inputs(inputs)
    if str(prompts_file) == "-" and any(str(i) == "-" for i in inputs):
        raise CLIError("standard input ('-') can hold the image or the prompts file, not both")
    if sum(str(i) == "-" for i in inputs) > 1:
        raise CLIError("'-' (standard input) given more than once: it holds one image")
    if prompts_file:
        texts += read_prompt_lines(prompts_file)
    check_prompt_count(len(texts) + len(supports))
    inputs = [read_stdin_image() if str(i) == "-" else i for i in inputs]  # '-': an image on standard input
    if len(supports) != len(support_masks):
        raise CLIError(f"--support and --support-mask come in pairs: got {len(supports)} image(s) "
                       f"and {len(support_masks)} mask(s)")
    visuals = [VisualPrompt(str(img), str(mask)) for img, mask in zip(supports, support_masks)]
    try:
        all_prompts, names = assemble(texts, visuals, text_weight, CLI_FIELDS)
        plan_prompts(all_prompts, names, negatives, max_terms=MAX_PROMPTS)  # expressions read before the model loads
    except PromptError as e:
        raise CLIError(str(e)) from None
    if labels and len(names) > 255:
        raise CLIError(f"--labels holds at most 255 prompts, got {len(names)}")
    try:
        editing = MaskOptions(smooth=smooth, fill_holes=fill_holes, min_area=min_area, grow=grow, invert=invert,
                              feather=feather)
    except MaskOptionsError as e:
        raise CLIError(f"--{str(e).replace('_', '-')}") from None
    if region_padding < 0:
        raise CLIError(f"--region-padding must be 0 or more pixels, got {region_padding}")
    if tiles is not None and tiles != "auto":
        if not tiles.isdigit() or int(tiles) < 1:
            raise CLIError(f"--tiles takes a whole number of crops per side (1 or more) or 'auto', got '{tiles}'")
        tiles = int(tiles)
    if tiles is not None and temporal > 1:
        raise CLIError("--temporal smooths the whole-image maps of a video; it does not combine with --tiles")
    kinds = []
    if prob_format:
        kinds.append("prob")
    if want_mask or video_out:
        kinds.append("mask")
    kinds += [k for k, on in (("overlay", overlay), ("labels", labels), ("rle", rle), ("cutout", cutout),
                              ("regions", regions)) if on]
    if not kinds:
        raise CLIError("no output chosen: use --mask, --prob png|npy, --overlay, --labels, --rle, --cutout or --regions")
    if stream:
        _check_stream(given, kinds, len(names), as_json, video_out)

    _set_threads(threads)
    try:
        shard = shard_from_env()
    except ValueError as e:
        raise CLIError(str(e)) from None
    if shard.enabled and device == "auto":
        import torch

        device = f"cuda:{shard.local_rank % torch.cuda.device_count()}" if torch.cuda.is_available() else "cpu"
    if backend == "onnx":
        predictor, model_name = _onnx_predictor(weights, tokenizer, keep_aspect, threads)
        on_cuda = False
    else:
        model = _load(weights, device, backbone, dtype, announce=shard.rank == 0)
        predictor = _predictor(model, tokenizer, keep_aspect=keep_aspect, warn_unknown_words=False)  # said below
        model_name = f"{model.identity.source} ({dtype})"
        on_cuda = next(model.parameters()).device.type == "cuda" and dtype == "float32"
    if threshold is None:
        threshold = predictor.threshold
        if shard.rank == 0 and not as_json:
            click.echo(f"threshold {threshold:g}: the model's own (--threshold to choose another)", err=True)
    options = SegmentOptions(out_dir=out_dir, outputs=tuple(kinds), prob_format=prob_format or "png",
                             threshold=threshold, none_threshold=none_threshold, overwrite=overwrite,
                             recursive=recursive, progress=progress, max_pixels=max_pixels,
                             model=model_name, keep_aspect=keep_aspect, batch_size=batch_size,
                             workers=2 if workers is None else workers, autocast=_float16() if amp and on_cuda else None,
                             editing=editing, negative=tuple(negatives), region_padding=region_padding,
                             region_order=region_order, refine=refine, tiles=tiles, temporal=temporal,
                             video_out=video_out, legend=legend, record_items=as_json, aliases=tuple(aliases))
    if stream:
        import tempfile

        scratch = tempfile.TemporaryDirectory(prefix="clipseg-stream-")
        options.out_dir = Path(scratch.name)
    from ..prompts.text import unknown_words, unknown_words_warning

    warning = unknown_words_warning(unknown_words(predictor.tokenizer, text_terms([*texts, *negatives])))
    if warning and shard.rank == 0:
        click.echo(f"warning: {warning}", err=True)
    try:
        segmenter = Segmenter(predictor, all_prompts, names, options)
    except PromptError as e:
        raise CLIError(f"bad prompt: {e}") from None
    except ImageError as e:
        raise CLIError(f"bad visual prompt: {e}") from None
    except ValueError as e:  # two prompts with one file-name key
        raise CLIError(str(e)) from None
    try:
        summary = segmenter.run(inputs, shard)
    except SettingsConflict as e:
        raise CLIError(str(e)) from None
    except OSError as e:  # e.g. the output folder cannot be written
        raise CLIError(f"{type(e).__name__}: {e}") from None
    if shard.enabled:
        summary = gather_summaries(summary, shard)
    if shard.rank == 0:
        click.echo(summary.report(), err=True)
        if as_json:
            click.echo(json.dumps(summary.to_dict(), indent=1))
    if stream:
        with scratch:
            files = [f for f in Path(scratch.name).rglob("*") if f.is_file() and f.name != "prompts.json"]
            if summary.ok and len(files) == 1:
                click.get_binary_stream("stdout").write(files[0].read_bytes())
    if not summary.ok:
        sys.exit(EXIT_FAILED_ITEMS)


_KEY = re.compile(r"[a-z0-9_]{1,48}")


def _aliases(named: tuple[str, ...]) -> list[tuple[str, str]]:
    """--name KEY=PROMPT values as (prompt, key) pairs; a malformed or repeated one is one line."""
    pairs: list[tuple[str, str]] = []
    for item in named:
        key, sep, prompt = item.partition("=")
        if not sep or not _KEY.fullmatch(key) or not prompt.strip():
            raise CLIError(f"--name expects KEY=PROMPT with KEY of lower-case letters, digits and _ (at most 48) and a "
                           f"prompt, got {item[:80]!r}")
        if key in [k for _, k in pairs] or prompt in [p for p, _ in pairs]:
            raise CLIError(f"--name {item[:80]!r}: each key and each prompt may be named once")
        pairs.append((prompt, key))
    return pairs


def _check_inputs(inputs) -> None:
    """A named input that is missing (or neither a file nor a folder) is a usage error, found
    before the model loads (the rule of the folder runs, `runs.folder.input_problem`)."""
    from ..runs.folder import input_problem

    for item in inputs:
        problem = None if str(item) == "-" else input_problem(item)
        if problem:
            raise CLIError(f"input '{item}' {problem}")


def _check_stream(inputs, kinds: list[str], n_prompts: int, as_json: bool, video_out: bool) -> None:
    """`-o -` writes one file to standard output: one image, one output, one prompt (or the
    prompt set's overlay / labels / RLE)."""
    from ..io.video import is_video_name

    single = len(inputs) == 1 and (str(inputs[0]) == "-" or (Path(inputs[0]).is_file()
                                                              and not is_video_name(Path(inputs[0]))))
    if not single:
        raise CLIError("-o - writes one output file to standard output: give one image (a file, or '-'), "
                       "not folders, videos or several inputs")
    if as_json or video_out:
        raise CLIError("-o - writes the output file itself to standard output: it does not combine with "
                       f"{'--json' if as_json else '--video-out'}")
    per_prompt = [k for k in kinds if k in ("prob", "mask", "cutout", "regions")]
    if len(kinds) != 1 or (per_prompt and n_prompts != 1):
        raise CLIError(f"-o - writes one output file: ask for one output ({', '.join(kinds)} asked; --no-mask drops "
                       f"the mask) of one prompt ({n_prompts} given), or write to a folder")


# ---------------------------------------------------------------- info


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="print JSON.")
@_weights_option
@_dtype_option
def info(as_json, weights, device, backbone, dtype):
    """Load the checkpoint and print what it is (source, architecture, parameters)."""
    from ..factory import describe

    d = describe(_load(weights, device, backbone, dtype))
    if as_json:
        click.echo(json.dumps(d, indent=2))
        return
    p = d["parameters"]
    dec, bb = d["decoder"], d["backbone"]
    lines = [
        f"weights:     {d['weights']}",
        f"source:      {d['source']}",
    ]
    for k in ("file_size", "files", "backbone_file", "note"):
        if k in d:
            lines.append(f"{k + ':':<12} {d[k]}")
    if "backbone_weights" in d:
        lines.append(f"trained on:  {d['backbone_weights']} (the backbone this decoder loads with)")
    lines += [
        f"decoder:     {dec['kind']}, reduce_dim={dec['reduce_dim']}, extract_layers={tuple(dec['extract_layers'])}, "
        f"refined={dec['refined']}",
        f"backbone:    ViT patch {bb['patch_size']}, width {bb['width']}, {bb['layers']} layers; "
        f"text context {bb['text_context_length']}; embed_dim {bb['embed_dim']}",
        f"input size:  {d['input_size']} px",
        f"threshold:   {d['threshold']:g} (from {d['threshold_source']})",
        f"tokenizer:   {d['tokenizer']}",
        f"parameters:  {p['total'] / 1e6:.2f} M total, {p['decoder'] / 1e6:.3f} M decoder",
        f"device:      {d['device']}",
    ]
    click.echo("\n".join(lines))


# ---------------------------------------------------------------- serve


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535))
@click.option("--max-body-mb", default=20.0, show_default=True, type=float, help="largest request body.")
@click.option("--max-pixels", default=40_000_000, show_default=True, type=int, help="largest image (width*height).")
@click.option("--max-prompts", default=32, show_default=True, type=int, help="most prompts per request.")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64),
              help="requests computed at the same time (inference threads).")
@click.option("--max-queue", default=16, show_default=True, type=click.IntRange(0, 100000),
              help="requests allowed to wait; beyond it the server answers 503.")
@click.option("--timeout", default=60.0, show_default=True, type=float, help="per-request time limit (s).")
@click.option("--cache-size", default=32, show_default=True, type=click.IntRange(0, 100000),
              help="images whose backbone features are kept (LRU by content hash).")
@click.option("--tokenizer", default="auto", show_default=True, help=_TOKENIZER_HELP)
@click.option("--log-level", default="info", show_default=True,
              type=click.Choice(["critical", "error", "warning", "info", "debug"]))
@_threads_option
@_weights_option
@_dtype_option
def serve(host, port, max_body_mb, max_pixels, max_prompts, workers, max_queue, timeout, cache_size, tokenizer,
          log_level, threads, weights, device, backbone, dtype):
    """Run the HTTP service and web page (FastAPI + uvicorn)."""
    try:
        import uvicorn

        from ..server import ServerSettings, create_app
        from ..server.runner import uvicorn_config
    except ImportError as e:
        raise CLIError(f"the server needs extra packages ({e.name} missing): pip install 'clipseg[server]'") from None
    _set_threads(threads)
    model = _load(weights, device, backbone, dtype)
    settings = ServerSettings(max_body_bytes=int(max_body_mb * 1024 * 1024), max_pixels=max_pixels,
                              max_prompts=max_prompts, workers=workers, max_queue=max_queue,
                              request_timeout_s=timeout, cache_size=cache_size)
    try:  # the service's predictors check that the tokenizer fits the model
        app = create_app(model, settings, tokenizer=_tokenizer(tokenizer))
    except ValueError as e:
        raise CLIError(str(e)) from None
    click.echo(f"clipseg: serving {model.identity.weights} on http://{host}:{port}/ (API docs /docs, schema /openapi.json)",
               err=True)
    uvicorn.Server(uvicorn_config(app, host, port, log_level=log_level)).run()


# ---------------------------------------------------------------- export-onnx


@cli.command("export-onnx")
@click.argument("out_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--input-size", default=None, metavar="S|HxW",
              help="image size the image-encoder graph is fixed to (default: the model's, e.g. 352).")
@click.option("--opset", default=None, type=int, help="ONNX opset (default: the exporter's).")
@_weights_option
def export_onnx_cmd(out_dir, input_size, opset, weights, device, backbone):
    """Export the model to ONNX in OUT_DIR: image encoder, text encoder, decoder + clipseg_onnx.json."""
    import importlib.util

    if importlib.util.find_spec("onnx") is None:  # torch's exporter only says "Module onnx is not installed!"
        raise CLIError("ONNX export needs the onnx package: pip install 'clipseg[onnx]'")
    try:
        from ..export import onnx as onnx_export
    except ImportError as e:
        if (getattr(e, "name", None) or "clipseg").startswith("clipseg"):
            raise CLIError(f"ONNX export is not part of this installation ({e})") from None
        raise CLIError(f"ONNX export needs {e.name}: pip install 'clipseg[onnx]'") from None
    fn = getattr(onnx_export, "export_onnx", None)
    if fn is None:
        raise CLIError("clipseg.export.onnx has no export_onnx() function")
    kwargs: dict = {}
    if input_size:
        try:
            parts = [int(v) for v in input_size.lower().replace("x", " ").split()]
            if len(parts) not in (1, 2) or min(parts) <= 0:
                raise ValueError
        except ValueError:
            raise CLIError(f"--input-size must be S or HxW (positive integers), got '{input_size}'") from None
        kwargs["input_size"] = parts[0] if len(parts) == 1 else tuple(parts)
    if opset is not None:
        kwargs["opset"] = opset
    model = _load(weights, device, backbone)
    kwargs.setdefault("input_size", model.config.input_size)
    try:
        result = fn(model, out_dir, **kwargs)
    except ImportError as e:
        raise CLIError(f"ONNX export needs {e.name}: pip install 'clipseg[onnx]'") from None
    except (ValueError, OSError, RuntimeError) as e:
        raise CLIError(f"ONNX export failed: {type(e).__name__}: {e}") from None
    if isinstance(result, dict):
        for name, path in result.items():
            click.echo(f"{name}: {path}")
    else:
        click.echo(f"exported to {out_dir}")


# ---------------------------------------------------------------- export-hf


@cli.command("export-hf")
@click.argument("out_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--metrics", "metric_files", multiple=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="results of `clipseg evaluate ... --out FILE.json` for the model card (repeatable).")
@click.option("--authors/--no-authors", default=True, show_default=True,
              help="also write the decoder in the authors' layout (authors/clipseg-decoder.pth).")
@click.option("--overwrite", is_flag=True, help="write into an OUT_DIR that already holds files.")
@click.option("--push", "push_repo", default=None, metavar="REPO",
              help="then upload OUT_DIR to this Hugging Face hub repo (needs network and `hf auth login`).")
@click.option("--private", is_flag=True, help="--push: create the repo private.")
@_weights_option
def export_hf_cmd(out_dir, metric_files, authors, overwrite, push_repo, private, weights, device, backbone):
    """Publish a model in the Hugging Face layout of CIDAS/clipseg-* (config.json, model.safetensors,
    processor and tokenizer files, README.md model card) so that transformers'
    CLIPSegForImageSegmentation.from_pretrained(OUT_DIR) loads it; a training run's model card
    says its base weights, data, iterations and losses (from the run folder beside --weights)."""
    from ..export.hf import HFExportError, export_hf, push_to_hub
    from ..export.model_card import CardFacts
    from ..io.files import load_json_file
    from ..training.record import run_facts

    if out_dir.exists() and any(out_dir.iterdir()) and not overwrite:
        raise CLIError(f"'{out_dir}' already holds files: choose an empty folder, or --overwrite")
    metrics = []
    for f in metric_files:
        try:
            value = load_json_file(f, 16 << 20, "evaluation result")
        except (OSError, ValueError) as e:
            raise CLIError(str(e)) from None
        metrics += value if isinstance(value, list) else [value]
    model = _load(weights, device, backbone, fallback=False)
    try:
        facts = run_facts(weights, metrics) if weights else CardFacts(metrics=metrics)
        paths = export_hf(model, out_dir, facts, authors=authors)
    except HFExportError as e:
        raise CLIError(str(e)) from None
    except OSError as e:
        raise CLIError(f"cannot write '{out_dir}': {type(e).__name__}: {e}") from None
    for name, path in paths.items():
        click.echo(f"{name:<28} {path.stat().st_size / 1e6:9.2f} MB")
    click.echo(f"load with transformers: CLIPSegForImageSegmentation.from_pretrained('{out_dir}'); "
               f"with clipseg: --weights {out_dir}", err=True)
    if push_repo:
        try:
            url = push_to_hub(out_dir, push_repo, private=private)
        except ImportError:
            raise CLIError("--push needs huggingface_hub: pip install 'clipseg[hub]'") from None
        except Exception as e:  # network, authentication, permissions: the hub's own message
            raise CLIError(f"upload to '{push_repo}' failed ({out_dir} is written): {type(e).__name__}: "
                           f"{str(e).splitlines()[0][:300] if str(e) else ''}") from None
        click.echo(f"pushed: {url}", err=True)


# ---------------------------------------------------------------- examples


@cli.command()
@click.argument("folder", default=".", type=click.Path(file_okay=False, path_type=Path))
def examples(folder):
    """Write the example files the README's commands use into FOLDER (default: here): photo.jpg,
    photos/, example.jpg + example_mask.png (a visual prompt), poster.png (a large image) and
    clip.mov (a short video; with the video extra). Files that exist are kept."""
    from ..assets import write_examples

    try:
        written = write_examples(folder)
    except OSError as e:
        raise CLIError(f"cannot write the examples to '{folder}': {type(e).__name__}: {e}") from None
    for name, path in written.items():
        click.echo(path)


# ---------------------------------------------------------------- demo / train / evaluate / world

cli.add_command(demo_command, name="demo")
cli.add_command(world_group, name="world")


cli.add_command(train_command, name="train")
cli.add_command(evaluate_command, name="evaluate")


def main(argv: list[str] | None = None) -> None:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    try:
        cli.main(args=argv, prog_name="clipseg")
    except ModuleNotFoundError as e:
        if (e.name or "").split(".")[0] != "torch":
            raise
        click.echo("Error: this command needs PyTorch, which is not installed: pip install 'clipseg[torch]' "
                   "(only `clipseg segment --backend onnx` runs without it)", err=True)
        sys.exit(EXIT_USAGE)


if __name__ == "__main__":
    main()
