"""`clipseg train` and `clipseg evaluate`: click front ends of `clipseg.cli.train_run.run_train`
and `clipseg.cli.evaluate_run.run_evaluate` (also `clipseg train` / `.evaluation`)."""

from __future__ import annotations

from collections.abc import Sequence

import click

# clipseg.cli.evaluate_run.PROTOCOLS and "tables" (listed here so that --help imports no torch; a test compares)
PROTOCOL_NAMES = ("visual-prompts", "referring", "zero-shot", "one-shot", "one-shot-text", "generalized", "tables")
_tokenizer = click.option("--tokenizer", default="auto", show_default=True,
                          help="auto (the model's own: the one its weights carry, else CLIP's), 'clip', or a "
                               "word-tokenizer vocabulary JSON.")
_no_progress = click.option("--no-progress", is_flag=True, help="no progress bars (they only show on a terminal anyway).")


@click.command("train")
@click.option("--config", required=True, metavar="FILE|NAME",
              help="experiment file, or the name of a shipped one (clipseg-pc-plus, vitseg-pc, ...).")
@click.option("--data", default="", help="root folder of the data set (not needed for 'world').")
@click.option("--backbone", default=None, help="CLIP weights (OpenAI ViT-B-16.pt, open_clip, HF CLIPModel folder).")
@click.option("--visual-backbone", default=None,
              help="ViTSeg: the ImageNet ViT of the visual tower (timm vit_base_patch16_224 .pth/.safetensors or an "
                   "HF ViTModel folder).")
@click.option("--init", default=None, help="fine-tune these CLIPSeg weights (e.g. CIDAS/clipseg-rd64-refined, rd64-uni.pth "
                                          "with --backbone) instead of a random decoder; the config's model section "
                                          "is then ignored.")
@_tokenizer
@click.option("--out-dir", default=None, help="overrides the experiment's train.out_dir.")
@click.option("--resume", is_flag=True, help="continue from the checkpoint in out_dir.")
@click.option("--set", "set_", multiple=True, metavar="KEY=VALUE", help="override a train field (repeatable).")
@_no_progress
def train(config, data, backbone, visual_backbone, init, tokenizer, out_dir, resume, set_, no_progress):
    """Train a decoder from an experiment file (one `error:` line and exit 2 for bad input)."""
    from .train_run import TrainArgs, run_train

    return run_train(TrainArgs(config, data, backbone, visual_backbone, init, tokenizer, out_dir, resume, set_,
                               no_progress))


@click.command("evaluate")
@click.argument("protocol", type=click.Choice(PROTOCOL_NAMES))
@click.argument("files", nargs=-1)
@click.option("--weights", default=None, help="CLIPSeg weights (anything clipseg.load_clipseg reads).")
@click.option("--backbone", default=None, help="CLIP weights for decoder-only files.")
@click.option("--data", default="", help="data set root folder.")
@click.option("--dataset", default=None, help="reader name (clipseg.training.data.DATASETS); default per protocol.")
@click.option("--split", default=None, help="default per protocol; 'none': every row of an own-data folder's list.")
@click.option("--options", default="{}", show_default=True, help='reader options as JSON, e.g. \'{"n_unseen": 4}\'.')
@click.option("--folds", type=int, multiple=True, help="Pascal-5i / COCO-20i fold (repeat for several: --folds 0 "
                                                      "--folds 2; default 0-3, each scored, then averaged).")
@click.option("--threshold", type=float, default=None, help="fixed threshold (default: the best of the 49).")
@_tokenizer
@click.option("--batch-size", type=int, default=16, show_default=True)
@click.option("--num-workers", type=int, default=0, show_default=True, help="DataLoader workers.")
@click.option("--limit", type=int, default=None, help="evaluate the first N items only (visual-prompts: default 1600).")
@click.option("--device", default="auto", show_default=True, help="auto (CUDA if present, else MPS, else CPU), cpu, "
                                                                  "cuda, cuda:N or mps.")
@click.option("--name", default=None, help="row name in the tables (default: the weights' file name).")
@click.option("--out", default=None, help="also write the result as JSON here.")
@_no_progress
def evaluate(protocol, files, weights, backbone, data, dataset, split, options, folds, threshold, tokenizer, batch_size,
             num_workers, limit, device, name, out, no_progress):
    """Evaluate weights with one of the paper's protocols (or `tables FILES...`: tabulate results)."""
    from .evaluate_run import EvalArgs, run_evaluate

    return run_evaluate(EvalArgs(protocol, files, weights, backbone, data, dataset, split, options, folds or (0, 1, 2, 3),
                                 threshold, tokenizer, batch_size, num_workers, limit, device, name, out, no_progress))


def main_train(argv: Sequence[str] | None = None):
    """`clipseg train ...`; returns the TrainResult."""
    return train.main(args=list(argv) if argv is not None else None, prog_name="clipseg train", standalone_mode=False)


def main_evaluate(argv: Sequence[str] | None = None) -> list[dict]:
    """`clipseg evaluate ...`; returns the result dicts it printed."""
    return evaluate.main(args=list(argv) if argv is not None else None, prog_name="clipseg evaluate",
                         standalone_mode=False)
