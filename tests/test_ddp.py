"""Two CPU ranks on gloo (the env:// rendezvous torchrun sets up) train to the same weights as
one process with the same global batch and seed.

Decoder dropout is set to 0 here: dropout masks are drawn per rank from torch's RNG, so with
dropout the two runs are different (equally valid) random runs. Everything else random -
the data order and the text/visual weights - is a function of the global sample position.
"""

from __future__ import annotations

import json
import os
import socket

import pytest
import torch
import torch.multiprocessing as mp

from clipseg.tokenizer import CLIPTokenizer
from clipseg.training import train

from test_training import ShapesDataset, config, tiny

ITERATIONS = 6


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(out_dir: str) -> list[float]:
    """One training run of the comparison; returns the per-iteration losses."""
    model = tiny(dropout=0.0)
    cfg = config(out_dir, iterations=ITERATIONS, checkpoint_every=ITERATIONS, export="none")
    return train(model, ShapesDataset(16), cfg, CLIPTokenizer(), progress=False).losses


def rank_main(rank: int, world_size: int, port: int, out_dir: str) -> None:
    os.environ.update(
        MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world_size), LOCAL_RANK=str(rank)
    )
    torch.set_num_threads(1)
    losses = run(out_dir)
    with open(os.path.join(out_dir, f"losses-{rank}.json"), "w") as f:
        json.dump(losses, f)


@pytest.mark.slow
def test_two_gloo_ranks_equal_one_process(tmp_path):
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        single = run(str(tmp_path / "one"))
    finally:
        torch.set_num_threads(before)
    mp.spawn(rank_main, args=(2, free_port(), str(tmp_path / "two")), nprocs=2, join=True)

    # rank 0 alone writes the checkpoint; both ranks saw the all-reduced (global) loss
    assert not list((tmp_path / "two").glob(".*.tmp"))
    losses = [json.loads((tmp_path / "two" / f"losses-{r}.json").read_text()) for r in range(2)]
    assert losses[0] == losses[1]
    assert losses[0] == pytest.approx(single, rel=1e-5, abs=1e-6)
    a = torch.load(tmp_path / "one" / "checkpoint.pt", weights_only=True)["decoder"]
    b = torch.load(tmp_path / "two" / "checkpoint.pt", weights_only=True)["decoder"]
    for name in a:
        if name.endswith("self_attn.in_proj_bias"):
            # The key bias cannot change any output (softmax is shift invariant): its gradient
            # is pure rounding noise, which Adam's normalisation scales up to lr-sized steps.
            # Queries and values must agree; keys only loosely.
            q_a, k_a, v_a = a[name].chunk(3)
            q_b, k_b, v_b = b[name].chunk(3)
            torch.testing.assert_close(torch.cat([q_b, v_b]), torch.cat([q_a, v_a]), rtol=1e-5, atol=1e-6, msg=name)
            torch.testing.assert_close(k_b, k_a, rtol=0, atol=1e-4, msg=name)
        else:
            torch.testing.assert_close(b[name], a[name], rtol=1e-5, atol=1e-6, msg=name)
    # and the two decoders compute the same maps
    model_a, model_b = tiny(dropout=0.0).eval(), tiny(dropout=0.0).eval()
    model_a.decoder.load_state_dict(a)
    model_b.decoder.load_state_dict(b)
    image, cond = torch.randn(2, 3, 64, 64), torch.randn(2, model_a.config.clip.embed_dim)
    with torch.no_grad():
        torch.testing.assert_close(model_b(image, cond=cond), model_a(image, cond=cond), rtol=1e-5, atol=1e-5)
