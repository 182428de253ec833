"""Output paths of `clipseg segment` are injective: one path per (input, prompt, kind), for
any file, folder and prompt names (property test), and the collisions users met are gone
(same names in two folders, a.jpg / a.png / a.jpg.png, dotted prompts, another prompt order,
temporaries of a killed run)."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from PIL import Image

from clipseg.cli.main import cli
from clipseg.runs.folder import IMAGE_SUFFIXES, Job, SegmentOptions, collect_jobs, output_targets
from clipseg.inference.naming import prompt_identity as prompt_source
from clipseg.io.atomic import remove_stale_temporaries, temporary_path
from clipseg.inference import naming

W = ["--weights", "tiny:random", "--no-progress"]
pytestmark = pytest.mark.usefixtures("one_torch_thread")

# names made to collide: dots, output extensions, the legend's name, '.d', '~', unicode, spaces
_CHARS = st.sampled_from(list("abAB.-_ ~é1") + [".png", ".PNG", ".d", ".json", "prompts.json", ".npy", ".mask", "~1"])
_NAME = st.lists(_CHARS, min_size=1, max_size=5).map("".join).filter(
    lambda n: n not in (".", "..") and not n.startswith("."))
_FILE = st.tuples(_NAME, st.sampled_from(sorted(IMAGE_SUFFIXES) + [".png.png", ".JPG"])).map("".join)
_TREE = st.lists(st.tuples(st.lists(_NAME, max_size=2), _FILE), min_size=1, max_size=6)
_ROOT = st.sampled_from(["cam", "cam", "Cam", "x.png", "prompts.json", "a.d", "b"])
_PROMPT = st.lists(st.sampled_from(list("abA. _-") + ["cat", "Cat", ".b", "a.b", "é", "mask", "png"]), min_size=1,
                   max_size=6).map("".join).filter(lambda p: p.strip())


def _all_targets(jobs: list[Job], prompts: list[str], out: Path) -> list[tuple[tuple, Path]]:
    """(what, path) for every kind, both prob formats and two orders of the prompts."""
    keys = [naming.prompt_key(p, prompt_source(p)) for p in prompts]
    rows = []
    for order in (keys, keys[::-1]):
        sk = naming.set_key(order, 0.5, 0.5)
        for fmt in ("png", "npy"):
            o = SegmentOptions(out_dir=out, outputs=("prob", "mask", "overlay", "labels", "rle"), prob_format=fmt)
            for job in jobs:
                for kind, path in output_targets(job, order, sk, o).items():
                    kind, _, k = kind.partition(":")
                    what = (str(job.source.resolve()), kind if kind != "prob" else f"prob-{fmt}",
                            order[int(k)] if k else sk)
                    rows.append((what, path))
    return rows


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(roots=st.lists(st.tuples(_ROOT, _TREE), min_size=1, max_size=3),
       loose=st.lists(st.tuples(st.sampled_from(["d1", "d2"]), _FILE), max_size=3),
       prompts=st.lists(_PROMPT, min_size=1, max_size=4, unique=True))
# folders named like a sibling's output and like the legend: random names rarely hit them
@example(roots=[("cam", [([], "a.png"), (["a.png.cat.mask.png"], "b.png")])], loose=[], prompts=["cat"])
@example(roots=[("cam", [(["prompts.json"], "a.png")])], loose=[], prompts=["cat"])
@example(roots=[("cam", [(["x.png"], "a.png"), (["x.png.d"], "a.png")])], loose=[], prompts=["cat"])
def test_output_paths_are_injective_for_any_names(roots, loose, prompts):
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        inputs: list[Path] = []
        for i, (root_name, tree) in enumerate(roots):
            root = tmp / f"in{i}" / root_name
            root.mkdir(parents=True, exist_ok=True)
            for dirs, fname in tree:
                f = root.joinpath(*dirs, fname)
                if f.exists() and f.is_dir():
                    continue
                try:
                    f.parent.mkdir(parents=True, exist_ok=True)
                    f.touch()
                except (FileExistsError, NotADirectoryError):
                    continue  # a file where the tree wants a folder
            inputs.append(root)
        for d, fname in loose:  # files given directly, maybe of the same name
            f = tmp / "loose" / d / fname
            f.parent.mkdir(parents=True, exist_ok=True)
            f.touch()
            inputs.append(f)
        out = tmp / "out"
        jobs, missing = collect_jobs(inputs, out)
        assert not missing
        sources = [j.source.resolve() for j in jobs]
        assert len(set(sources)) == len(sources)  # each file once
        rows = _all_targets(jobs, prompts, out)
        paths = [p for _, p in rows]
        owner: dict[Path, tuple] = {}
        for what, p in rows:
            assert owner.setdefault(p, what) == what, f"{p} is the output of {owner[p]} and of {what}"
        files = set(paths)
        assert out / naming.LEGEND_NAME not in files
        # also on a case-insensitive disk (macOS, Windows), unless two inputs' names differ only
        # in case there (the run then refuses: test_inputs_differing_only_in_case_are_refused...)
        if not naming.case_collisions([(*j.folders, j.file_name) for j in jobs]):
            folded: dict[str, tuple] = {}
            for what, p in rows:
                assert folded.setdefault(str(p).casefold(), what) == what, f"{p} and {folded[str(p).casefold()]}"
            folded_files = {str(p).casefold() for p in files}
            assert not any(str(parent).casefold() in folded_files for p in files for parent in p.parents)
        for p in files:  # no output is a folder that holds another output
            for parent in p.parents:
                assert parent not in files, f"{parent} is an output file and a folder of {p}"
                if parent == out:
                    break
            assert not p.name.startswith(".") or p.name.endswith(tuple(naming.KIND_SUFFIXES.values()))


def test_prompt_keys_are_stable_plain_when_possible_and_dot_free():
    assert naming.prompt_key("cat", "text:cat") == "cat"
    # prompts that differ only in case get keys that differ in more than case
    keys = [naming.prompt_key(t, f"text:{t}") for t in ("cat", "Cat", "CAT")]
    assert len({k.casefold() for k in keys}) == 3 and keys[1].startswith("Cat-")
    for text in ["a cat", "a.b", "b", ".b", "a_cat", "a-cat", "x" * 60, "é"]:
        key = naming.prompt_key(text, f"text:{text}")
        assert "." not in key and key == naming.prompt_key(text, f"text:{text}")
    assert naming.prompt_key("a cat", "text:a cat") != naming.prompt_key("a_cat", "text:a_cat")
    # the same name of another prompt (another support image) gets another key
    assert naming.prompt_key("visual", "visual:1/2") != naming.prompt_key("visual", "visual:1/3")
    assert naming.folder_component("x.png") != "x.png" and naming.folder_component("x.png.d") != "x.png.d"
    assert naming.folder_component("photos") == "photos"


# ---------------------------------------------------------------- the cases users met, end to end


def _img(path: Path, seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray((np.random.default_rng(seed).random((20, 24, 3)) * 255).astype(np.uint8)).save(
        path, format="PNG")
    return path


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def _outputs(out: Path) -> list[Path]:
    return sorted(p for p in out.rglob("*") if p.is_file() and p.name != naming.LEGEND_NAME)


def test_same_names_in_two_folders_and_two_files_are_kept_apart(tmp_path):
    a = _img(tmp_path / "cam1" / "0001.jpg", 1)
    b = _img(tmp_path / "cam2" / "0001.jpg", 2)
    res = run("segment", tmp_path / "cam1", tmp_path / "cam2", "-p", "cat", "--prob", "npy", "--no-mask", "-o", tmp_path / "o", *W)
    assert res.exit_code == 0 and "2 segmented" in res.output, res.output
    pa = np.load(tmp_path / "o" / "cam1" / "0001.jpg.cat.prob.npy")
    pb = np.load(tmp_path / "o" / "cam2" / "0001.jpg.cat.prob.npy")
    assert not np.array_equal(pa, pb)  # two images, two results
    res = run("segment", a, b, "-p", "cat", "--prob", "npy", "--no-mask", "-o", tmp_path / "o2", *W)
    assert res.exit_code == 0 and "2 segmented" in res.output
    assert len(_outputs(tmp_path / "o2")) == 2
    # two folders of the same name
    _img(tmp_path / "x" / "cam" / "1.png", 3)
    _img(tmp_path / "y" / "cam" / "1.png", 4)
    res = run("segment", tmp_path / "x" / "cam", tmp_path / "y" / "cam", "-p", "cat", "-o", tmp_path / "o3", *W)
    assert res.exit_code == 0 and "2 segmented" in res.output and len(_outputs(tmp_path / "o3")) == 2


def test_roots_differing_only_in_case_get_apart_and_case_collisions_are_found():
    assert naming.root_labels([("Cam", "/a/Cam"), ("cam", "/b/cam")])[0] != "Cam"
    assert naming.root_labels([("Cam", "/a/Cam"), ("b", "/b/b")]) == ["Cam", "b"]
    assert naming.case_collisions([("x", "a.png"), ("x", "A.png"), ("y", "a.png"), ("X", "b.png")]) == [
        ("x/a.png", "x/A.png")]
    assert naming.case_collisions([("x", "a.png"), ("X", "a.png")]) == [("x/a.png", "X/a.png")]


def test_inputs_differing_only_in_case_are_refused_on_a_case_insensitive_disk(tmp_path, monkeypatch):
    import os

    assert naming.is_case_insensitive(tmp_path) in (True, False)
    assert not any(n.startswith("clipseg-case-probe") for n in os.listdir(tmp_path))  # the probe is gone
    _img(tmp_path / "in" / "a.png", 1)
    if naming.is_case_insensitive(tmp_path):
        pytest.skip("this disk ignores case: a.png and A.png cannot both exist")
    _img(tmp_path / "in" / "A.png", 2)
    # on this (case-sensitive) disk both are written
    res = run("segment", tmp_path / "in", "-p", "cat", "-o", tmp_path / "o", *W)
    assert res.exit_code == 0 and "2 segmented" in res.output, res.output
    # where the output folder ignores case, the run stops before any work, naming both
    monkeypatch.setattr(naming, "is_case_insensitive", lambda folder: True)
    res = run("segment", tmp_path / "in", "-p", "cat", "-o", tmp_path / "o2", *W)
    assert res.exit_code != 0 and "'A.png' and 'a.png'" in res.output and "Traceback" not in res.output, res.output
    assert not _outputs(tmp_path / "o2")


def test_extensions_and_dotted_prompts_never_share_a_file(tmp_path):
    root = tmp_path / "in"
    for i, name in enumerate(["a.jpg", "a.png", "a.jpg.png", "x.jpg", "x.a.jpg"]):
        _img(root / name, i)
    res = run("segment", root, "-p", "a.b", "-p", "b", "--mask", "--rle", "-o", tmp_path / "o", *W)
    assert res.exit_code == 0 and "5 image(s): 5 segmented" in res.output, res.output
    assert len(_outputs(tmp_path / "o")) == 5 * 3  # 2 masks + 1 RLE per image
    res = run("segment", root, "-p", "a.b", "-p", "b", "--mask", "--rle", "-o", tmp_path / "o", *W)
    assert "0 segmented, 5 skipped" in res.output
    for rle_file in (tmp_path / "o").glob("*.rle.json"):  # each RLE names its own image
        doc = json.loads(rle_file.read_text())
        assert rle_file.name.startswith(Path(doc["image"]).name + ".set")


def test_another_prompt_order_writes_new_label_maps_and_the_legend_keeps_both(tmp_path):
    img = _img(tmp_path / "p.png")
    out = tmp_path / "o"
    assert run("segment", img, "-p", "cat", "-p", "dog", "--labels", "-o", out, *W).exit_code == 0
    assert run("segment", img, "-p", "dog", "-p", "cat", "--labels", "-o", out, *W).exit_code == 0
    legend = json.loads((out / "prompts.json").read_text())
    assert len(legend["sets"]) == 2
    labels = {}
    for sk, entry in legend["sets"].items():
        arr = np.asarray(Image.open(out / f"p.png.{sk}.labels.png"))
        order = [entry["labels"][str(k)] for k in range(1, 3)]
        labels[tuple(order)] = arr
    a, b = labels[("cat", "dog")], labels[("dog", "cat")]
    swapped = np.where(b == 1, 2, np.where(b == 2, 1, b))
    assert np.array_equal(a, swapped)  # label k means the prompt the legend says, in both files


def test_temporaries_of_a_killed_run_are_removed_and_live_ones_kept(tmp_path):
    import subprocess
    import sys

    out = tmp_path / "o"
    img = _img(tmp_path / "p.png")
    target = out / "sub" / "p.png.cat.mask.png"
    target.parent.mkdir(parents=True)
    # a writer killed with SIGKILL after opening its temporary
    code = ("import os, sys; from pathlib import Path; from clipseg.io.atomic import atomic_write; "
            "atomic_write(Path(sys.argv[1]), lambda f: (f.write(b'half'), f.flush(), os.kill(os.getpid(), 9)))")
    subprocess.run([sys.executable, "-c", code, str(target)])
    left = list(out.rglob("*.tmp"))
    assert len(left) == 1 and not target.exists()
    live = temporary_path(out / "other.png")  # this process's own: in use
    live.write_bytes(b"x")
    res = run("segment", img, "-p", "cat", "-o", out, *W)
    assert res.exit_code == 0 and "removed 1 temporary file(s)" in res.output, res.output
    assert not left[0].exists() and live.exists()
    assert remove_stale_temporaries(out) == 0
    os.unlink(live)


def test_overwrite_with_other_settings_keeps_every_entry_true_to_its_files(tmp_path):
    img = _img(tmp_path / "p.png")
    out = tmp_path / "o"
    assert run("segment", img, "-p", "cat", "-o", out, *W).exit_code == 0  # threshold 0.5
    res = run("segment", img, "-p", "dog", "--threshold", "0.3", "--overwrite", "-o", out, *W)
    assert res.exit_code == 0
    legend = json.loads((out / "prompts.json").read_text())
    assert legend["prompts"]["cat"]["made_with"]["threshold"] == 0.5  # cat's mask is still the 0.5 one
    assert legend["prompts"]["dog"]["made_with"]["threshold"] == 0.3
    res = run("segment", img, "-p", "cat", "--threshold", "0.3", "-o", out, *W)  # would skip a 0.5 mask
    assert res.exit_code == 2 and "the files of 'cat' were made with" in res.output
