"""`clipseg train` and `clipseg evaluate` as a user meets them: every bad input is one `error:`
line and exit 2 before the model loads; without a terminal, loss lines and a closing summary."""

from __future__ import annotations

import json

import pytest

from clipseg.cli import train_run
from clipseg.cli.train import main_evaluate, main_train
from clipseg.io.machine import available_cpus
from clipseg.training import TrainConfig

from fixtures_datasets import write_phrase_folder


def _experiment(tmp_path, **train) -> str:
    exp = {"name": "mine", "model": {"variant": "tiny", "backbone": "random"},
           "data": {"dataset": "folder", "split": None},
           "train": {"iterations": 4, "batch_size": 2, "log_every": 2, "num_workers": 0,
                     "out_dir": str(tmp_path / "run"), **train}}
    path = tmp_path / "exp.json"
    path.write_text(json.dumps(exp))
    return str(path)


@pytest.fixture
def data(tmp_path):
    root = tmp_path / "data"
    write_phrase_folder(root, [(f"im{k}.png", f"m{k}.png", "a red square") for k in range(4)])
    return root


@pytest.fixture
def no_model(monkeypatch):
    """Loading or building a model fails the test: every input must be checked before."""
    def loaded(*a, **k):
        raise AssertionError("the model was loaded before the bad input was found")

    monkeypatch.setattr(train_run, "build_model", loaded)
    monkeypatch.setattr(train_run, "load_weights", loaded)


def _bad_phrases(root):
    with open(root / "phrases.csv", "a") as f:
        f.write("im0.png,m0.png\n")  # two fields


def _bad_vocab(tmp_path):
    (tmp_path / "vocab.json").write_text("{not json")
    return ["--tokenizer", str(tmp_path / "vocab.json")]


@pytest.mark.parametrize("case, expected", [
    ("missing-data", "does not exist"),
    ("no-data", "--data is required"),
    ("bad-row", "phrases.csv:6"),
    ("iterations=abc", "iterations must be a whole number"),
    ("amp=fast", "amp must be one of"),
    ("unknown-key", "unknown field(s) itrations"),
    ("missing-vocab", "missing.json"),
    ("bad-vocab", "vocab.json"),
    ("bad-variant", "unknown model variant"),
])
def test_bad_train_input_is_one_line_and_exit_2_before_the_model_loads(tmp_path, data, no_model, capsys, case,
                                                                       expected):
    args = ["--config", _experiment(tmp_path), "--data", str(data), "--no-progress"]
    if case == "missing-data":
        args[3] = str(tmp_path / "nowhere")
    elif case == "no-data":
        args = args[:2] + args[4:]
    elif case == "bad-row":
        _bad_phrases(data)
    elif case == "iterations=abc":
        args += ["--set", "iterations=abc"]
    elif case == "amp=fast":
        args += ["--set", "amp=fast"]
    elif case == "unknown-key":
        args += ["--set", "itrations=3"]
    elif case == "missing-vocab":
        args += ["--tokenizer", str(tmp_path / "missing.json")]
    elif case == "bad-vocab":
        args += _bad_vocab(tmp_path)
    elif case == "bad-variant":
        exp = json.loads(open(args[1]).read())
        exp["model"]["variant"] = "rd65"
        open(args[1], "w").write(json.dumps(exp))
    with pytest.raises(SystemExit) as info:
        main_train(args)
    err = capsys.readouterr().err
    assert info.value.code == 2
    assert err.startswith("error: ") and err.count("\n") == 1 and expected in err, err
    assert not (tmp_path / "run").exists()  # nothing written for a run that never started


def test_train_without_a_terminal_prints_loss_lines_and_a_summary(tmp_path, data, capsys):
    result = main_train(["--config", _experiment(tmp_path), "--data", str(data)])
    out, err = capsys.readouterr()
    lines = [line for line in err.splitlines() if line.startswith("iteration ")]
    assert [line.split()[1] for line in lines] == ["2/4", "4/4"]  # every log_every, and the last
    assert [float(line.split()[3]) for line in lines] == pytest.approx([result.losses[1], result.losses[3]], abs=1e-4)
    assert "trained 4 iterations" in out and f"loss {result.losses[0]:.4f} -> {result.losses[-1]:.4f}" in out
    weights = str(tmp_path / "run" / "model.safetensors")
    assert f"weights:  {weights}" in out
    assert f"segment:  clipseg segment IMAGE -p 'a prompt' --weights {weights}" in out
    assert f"evaluate: clipseg evaluate referring --weights {weights} --dataset folder --data {data}" in out
    record = json.loads((tmp_path / "run" / "experiment.json").read_text())
    assert record["init"] is None and record["trained"]["source"] and record["trained"]["data"] == str(data)

    # the summary's evaluate command runs as printed: the fixed and the best threshold, the folder's name as title
    results = main_evaluate(["referring", "--weights", weights, "--dataset", "folder", "--data", str(data),
                             "--split", "none", "--no-progress"])
    table = capsys.readouterr().out
    assert table.startswith("Table 3: Referring expression segmentation (data)")
    best = results[0]["best"]
    if best["threshold"] != 0.3:
        assert f"model.safetensors (best t)  {best['threshold']:.2f}" in table


def test_num_workers_defaults_to_at_most_the_cpus():
    assert TrainConfig().workers == min(4, available_cpus())
    assert TrainConfig(num_workers=0).workers == 0
    with pytest.raises(ValueError):
        TrainConfig(num_workers=-1)
