"""Training: the loss goes down, a killed-and-resumed run equals an uninterrupted one, configs load."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from clipseg.datasets.sample import Sample
from clipseg.model import build_clipseg
from clipseg.prompts.visual import VisualPromptConfig, engineer_visual_prompt
from clipseg.tokenizer import CLIPTokenizer
from clipseg.training import CheckpointMismatchError, Experiment, ShardedBatchSampler, TrainConfig, train
from clipseg.cli.train import main_train
from clipseg.training.conditioning import text_weights

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


class ShapesDataset(torch.utils.data.Dataset):
    """Noise images with one red or blue rectangle; phrase names the colour. Every second
    sample has an engineered visual support, every fourth is visual-only (empty phrase)."""

    def __init__(self, n: int, size: int = 64):
        self.n, self.size = n, size

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> Sample:
        g = torch.Generator().manual_seed(i)
        s = self.size
        image = torch.randn(3, s, s, generator=g) * 0.3
        y0, x0 = torch.randint(0, s // 2, (2,), generator=g).tolist()
        h, w = torch.randint(s // 4, s // 2, (2,), generator=g).tolist()
        mask = torch.zeros(1, s, s)
        mask[:, y0 : y0 + h, x0 : x0 + w] = 1
        red = i % 2 == 0
        image[0 if red else 2] += 2 * mask[0]
        phrase = "a red rectangle" if red else "a blue rectangle"
        support = None
        if i % 2 == 0:
            support = engineer_visual_prompt(image, mask[0], VisualPromptConfig(size=s))
            phrase = "" if i % 4 == 0 else phrase
        return Sample(image, mask, phrase, support, class_name=str(i))


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def tokenizer():
    return CLIPTokenizer()


def tiny(seed: int = 0, **decoder):
    torch.manual_seed(seed)
    return build_clipseg("tiny", **decoder)


def config(out_dir: Path, **kw) -> TrainConfig:
    base = dict(iterations=12, batch_size=4, checkpoint_every=4, log_every=2, out_dir=str(out_dir), num_workers=0)
    return TrainConfig(**{**base, **kw})


def test_loss_goes_down(tmp_path, tokenizer):
    result = train(tiny(), ShapesDataset(64), config(tmp_path, iterations=40, batch_size=8), tokenizer, progress=False)
    first, last = sum(result.losses[:5]) / 5, sum(result.losses[-5:]) / 5
    assert last < first - 0.05, (first, last)
    assert result.iteration == 40 and result.checkpoint.exists() and result.exported.exists()
    rows = (tmp_path / "train_log.csv").read_text().splitlines()
    assert rows[0] == "iteration,loss,lr,it_per_s" and len(rows) == 1 + 20
    lrs = [float(r.split(",")[2]) for r in rows[1:]]
    assert lrs == sorted(lrs, reverse=True) and lrs[-1] == pytest.approx(1e-4, rel=0.02)


def test_bf16_autocast_on_cpu(tmp_path, tokenizer):
    cfg = config(tmp_path, iterations=2, amp="bf16", export="none")
    result = train(tiny(), ShapesDataset(8), cfg, tokenizer, progress=False)
    assert len(result.losses) == 2 and all(0 < loss < 2 for loss in result.losses)
    assert result.exported is None


class Killed(Exception):
    pass


def kill_at(iteration: int):
    def on_step(info):
        if info.iteration == iteration:
            raise Killed

    return on_step


@pytest.mark.parametrize("checkpoint_every", [4, 3], ids=["at-epoch-end", "mid-epoch"])
def test_killed_and_resumed_run_equals_uninterrupted(tmp_path, tokenizer, checkpoint_every):
    # 16 samples / batch 4: three epochs; decoder dropout 0.1 stays on; text/visual mixing is used.
    # Resuming mid-epoch starts a DataLoader at another iteration than the whole run did.
    data = ShapesDataset(16)
    whole = train(tiny(), data, config(tmp_path / "a", checkpoint_every=checkpoint_every), tokenizer, progress=False)

    with pytest.raises(Killed):
        train(tiny(), data, config(tmp_path / "b", checkpoint_every=checkpoint_every), tokenizer, progress=False,
              on_step=kill_at(10))
    model = tiny()  # the frozen backbone is the same; the decoder must come from the checkpoint
    with torch.no_grad():
        for p in model.decoder.parameters():
            p.normal_()
    resumed = train(model, data, config(tmp_path / "b", checkpoint_every=checkpoint_every), tokenizer,
                    progress=False, resume=True)

    start = 10 // checkpoint_every * checkpoint_every
    assert resumed.start_iteration == start and resumed.iteration == 12
    assert resumed.losses == whole.losses[start:]
    expected = torch.load(whole.checkpoint, weights_only=True)["decoder"]
    for name, value in model.decoder.state_dict().items():
        assert torch.equal(value, expected[name]), name
    log = (tmp_path / "b" / "train_log.csv").read_text().splitlines()
    assert [r.split(",")[0] for r in log[1:]] == ["2", "4", "6", "8", "10", "12"]


def test_resume_rejects_another_model_config(tmp_path, tokenizer):
    train(tiny(), ShapesDataset(8), config(tmp_path, iterations=2), tokenizer, progress=False)
    with pytest.raises(CheckpointMismatchError, match="(?s)different model config.*reduce_dim: checkpoint 16, now 8"):
        train(tiny(reduce_dim=8), ShapesDataset(8), config(tmp_path, iterations=4), tokenizer, progress=False, resume=True)
    with pytest.raises(CheckpointMismatchError, match="lr"):
        train(tiny(), ShapesDataset(8), config(tmp_path, iterations=2, lr=5e-4), tokenizer, progress=False, resume=True)


def test_sampler_shards_the_global_batch_and_resumes():
    one = ShardedBatchSampler(10, 4, seed=3)
    halves = [ShardedBatchSampler(10, 4, seed=3, rank=r, world_size=2) for r in range(2)]
    assert one.batches_per_epoch == 2  # the remainder is dropped
    for epoch in range(3):
        pairs = zip(halves[0].epoch_batches(epoch), halves[1].epoch_batches(epoch))
        assert one.epoch_batches(epoch) == [a + b for a, b in pairs]
    assert one.epoch_batches(0) != one.epoch_batches(1)  # reshuffled every epoch
    epochs = one.epochs_from(3)  # iteration 3 = epoch 1, batch 1
    assert next(epochs) == (1, one.epoch_batches(1)[1:])
    assert next(epochs) == (2, one.epoch_batches(2))
    with pytest.raises(ValueError, match="split evenly"):
        ShardedBatchSampler(10, 3, seed=0, world_size=2)


def test_text_weights():
    w = text_weights(["a", "", "b"], torch.tensor([False, True, True]), torch.tensor([0.3, 0.3, 0.3]))
    assert w.tolist() == pytest.approx([1.0, 0.0, 0.3])
    with pytest.raises(ValueError, match="neither"):
        text_weights([""], torch.tensor([False]), torch.tensor([0.1]))


def test_paper_configs_load():
    files = sorted(CONFIGS.glob("*.json"))
    names = {f.stem for f in files}
    assert {"clipseg-pc", "clipseg-pc-plus", "clipseg-pc-d128", "clip-deconv-pc-plus", "vitseg-pc-plus",
            "rd64-refined-pc-plus"} <= names  # fmt: skip
    for f in files:
        exp = Experiment.load(f)
        assert exp.name == f.stem
        assert exp.train.batch_size == 64 and exp.train.lr_min == 1e-4
    assert Experiment.load(CONFIGS / "rd64-refined-pc-plus.json").train.iterations == 50_000
    with pytest.raises(ValueError, match="unknown field"):
        Experiment.from_dict({"name": "x", "train": {"iterationz": 3}})


def test_main_train_runs_an_experiment_file(tmp_path, monkeypatch):
    exp = {
        "name": "tiny-shapes",
        "model": {"variant": "tiny", "backbone": "random"},
        "data": {"dataset": "test-shapes"},
        "train": {"iterations": 3, "batch_size": 4, "out_dir": str(tmp_path / "run"), "num_workers": 0},
    }
    path = tmp_path / "exp.json"
    path.write_text(json.dumps(exp))
    from clipseg.training import data as training_data

    monkeypatch.setitem(training_data.DATASETS, "test-shapes", lambda root, split, options, size: ShapesDataset(8, size))
    result = main_train(["--config", str(path), "--data", str(tmp_path), "--no-progress", "--set", "iterations=2"])
    assert result.iteration == 2 and (tmp_path / "run" / "experiment.json").exists()


class KilledAtWrite(BaseException):
    """Stands for SIGKILL at a write boundary (BaseException: nothing in the trainer catches it)."""


@pytest.mark.parametrize("write,when", [(w, t) for w in (3, 4) for t in ("before", "after")],
                         ids=lambda v: str(v))
def test_kill_at_every_write_boundary_then_resume_is_exact(tmp_path, tokenizer, monkeypatch, write, when):
    """Saves at iterations 4 and 8 make four file commits (renames): text cache 4, checkpoint 4,
    text cache 8, checkpoint 8. Kill just before or just after the third or fourth: the resumed
    run must end with the uninterrupted run's weights and losses."""
    import clipseg.io.atomic as atomic

    data = ShapesDataset(16)
    whole = train(tiny(), data, config(tmp_path / "a"), tokenizer, progress=False)
    real_replace, calls = atomic.os.replace, []

    def replace(src, dst):
        calls.append(Path(dst).name)
        if len(calls) == write and when == "before":
            raise KilledAtWrite
        real_replace(src, dst)
        if len(calls) == write and when == "after":
            raise KilledAtWrite

    monkeypatch.setattr(atomic.os, "replace", replace)
    with pytest.raises(KilledAtWrite):
        train(tiny(), data, config(tmp_path / "b"), tokenizer, progress=False)
    monkeypatch.setattr(atomic.os, "replace", real_replace)
    assert calls[-1] == ("checkpoint.pt" if write == 4 else "text_cache.rank0.it8.pt")
    resumed = train(tiny(), data, config(tmp_path / "b"), tokenizer, progress=False, resume=True)
    committed = 8 if (write, when) == (4, "after") else 4
    assert resumed.start_iteration == committed
    assert resumed.losses == whole.losses[committed:]
    expected = torch.load(whole.checkpoint, weights_only=True)["decoder"]
    for name, value in torch.load(resumed.checkpoint, weights_only=True)["decoder"].items():
        assert torch.equal(value, expected[name]), name
    assert sorted(p.name for p in (tmp_path / "b").glob("text_cache*")) == ["text_cache.rank0.it12.pt"]


def test_resume_with_a_missing_text_cache_or_a_bad_checkpoint_is_a_clear_error(tmp_path, tokenizer):
    from clipseg.training.checkpoint import CheckpointReadError

    with pytest.raises(Killed):
        train(tiny(), ShapesDataset(8), config(tmp_path, iterations=8), tokenizer, progress=False,
              on_step=kill_at(5))
    cache = tmp_path / "text_cache.rank0.it4.pt"
    cache.rename(tmp_path / "elsewhere.pt")
    with pytest.raises(CheckpointReadError, match="text-embedding cache of rank 0 .* is missing"):
        train(tiny(), ShapesDataset(8), config(tmp_path, iterations=8), tokenizer, progress=False, resume=True)
    (tmp_path / "elsewhere.pt").rename(cache)
    ckpt = tmp_path / "checkpoint.pt"
    good = ckpt.read_bytes()
    for bad in (good[: len(good) // 2], b"", b"\x80\x02}q\x00.", good[:100] + bytes(200)):
        ckpt.write_bytes(bad)
        with pytest.raises(CheckpointMismatchError) as info:
            train(tiny(), ShapesDataset(8), config(tmp_path, iterations=8), tokenizer, progress=False, resume=True)
        assert "checkpoint.pt" in str(info.value)
    ckpt.write_bytes(good)
    result = train(tiny(), ShapesDataset(8), config(tmp_path, iterations=8), tokenizer, progress=False, resume=True)
    assert result.start_iteration == 4


def test_main_train_bad_weights_and_resume_exit_2_with_one_line(tmp_path, capsys, monkeypatch):
    from clipseg.training import data as training_data

    monkeypatch.setitem(training_data.DATASETS, "test-shapes", lambda root, split, options, size: ShapesDataset(8, size))
    out = tmp_path / "run"
    exp = {"name": "t", "model": {"variant": "tiny", "backbone": "random"}, "data": {"dataset": "test-shapes"},
           "train": {"iterations": 2, "batch_size": 4, "out_dir": str(out), "num_workers": 0}}
    (tmp_path / "exp.json").write_text(json.dumps(exp))
    args = ["--config", str(tmp_path / "exp.json"), "--data", str(tmp_path), "--no-progress"]
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"PK\x03\x04 truncated")
    for extra in (["--init", str(bad)], ["--init", str(tmp_path / "missing.safetensors")]):
        with pytest.raises(SystemExit) as info:
            main_train(args + extra)
        assert info.value.code == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and err.count("\n") == 1 and str(tmp_path) in err
    out.mkdir()
    (out / "checkpoint.pt").write_bytes(b"\x80\x02 not a checkpoint")
    with pytest.raises(SystemExit) as info:
        main_train(args + ["--resume"])
    err = capsys.readouterr().err
    assert info.value.code == 2 and "checkpoint.pt" in err and "Traceback" not in err


def test_shipped_experiments_are_usable_by_name():
    from clipseg.training.config import resolve_config, shipped_configs

    names = shipped_configs()
    assert {"clipseg-pc-plus", "vitseg-pc", "clip-deconv-pc-plus"} <= set(names)
    for spec in ("clipseg-pc-plus", "clipseg-pc-plus.json", "configs/clipseg-pc-plus.json"):
        assert Experiment.load(spec).name == Experiment.load(names["clipseg-pc-plus"]).name
    with pytest.raises(ValueError, match="not a shipped experiment"):
        resolve_config("no-such-experiment")


def test_a_resumed_run_removes_the_temporaries_of_the_killed_one(tmp_path, tokenizer):
    from clipseg.io.atomic import temporary_path

    train(tiny(), ShapesDataset(8), config(tmp_path, iterations=4), tokenizer, progress=False)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()  # a pid whose process is gone
    stale = temporary_path(tmp_path / "checkpoint.pt").with_name(
        temporary_path(tmp_path / "checkpoint.pt").name.replace(f"-{os.getpid()}.", f"-{dead.pid}."))
    stale.write_bytes(b"half a checkpoint")
    train(tiny(), ShapesDataset(8), config(tmp_path, iterations=4), tokenizer, progress=False, resume=True)
    assert not stale.exists()
