"""Videos in `clipseg segment`: frames equal images, resumable (also with temporal smoothing),
injective names, mask videos, and bad videos as one line each."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from clipseg.cli.main import cli
from clipseg.inference import naming
from clipseg.io.video import write_lossless_video
from clipseg.worldgen.scenes import SceneConfig, generate_scene

av = pytest.importorskip("av", reason="the video extra (PyAV) is not installed")

PROMPT = "a photo of a heart."


def _frames(n: int, size: int = 96, seed: int = 5) -> list[np.ndarray]:
    scene = generate_scene(seed, SceneConfig(image_size=size, min_objects=2, max_objects=3))
    return [np.roll(scene.image, 3 * i, axis=1) for i in range(n)]


def _write_video(path: Path, frames: list[np.ndarray], fps: int = 10) -> Path:
    """A lossless video: decoding gives the frames back."""
    return write_lossless_video(path, frames, fps)


def _segment(*args) -> object:
    return CliRunner().invoke(cli, ["segment", *map(str, args), "-w", "world", "-p", PROMPT, "--no-progress"])


def _npys(folder: Path) -> dict[str, np.ndarray]:
    return {p.name: np.load(p) for p in sorted(folder.glob("*.prob.npy"))}


def test_video_frames_equal_the_frames_as_images(tmp_path):
    frames = _frames(7)
    video = _write_video(tmp_path / "clip.mov", frames)
    stills = tmp_path / "stills"
    stills.mkdir()
    for i, f in enumerate(frames):
        Image.fromarray(f).save(stills / f"frame-{i:06d}.png")
    r = _segment(video, "--prob", "npy", "-o", tmp_path / "v")
    assert r.exit_code == 0, r.output
    assert "7 image(s): 7 segmented" in r.output
    r = _segment(stills, "--prob", "npy", "-o", tmp_path / "s")
    assert r.exit_code == 0, r.output
    got = _npys(tmp_path / "v" / "clip.mov.frames")
    want = _npys(tmp_path / "s")
    assert len(got) == 7
    for name, arr in got.items():
        assert np.array_equal(arr, want[name.replace("frame-", "frame-", 1).replace(".a_photo", ".png.a_photo", 1)])


def test_a_resumed_video_with_temporal_smoothing_writes_what_an_uninterrupted_run_writes(tmp_path):
    video = _write_video(tmp_path / "clip.mov", _frames(12))
    args = ["--prob", "npy", "--temporal", "3", "--video-out"]
    r = _segment(video, *args, "-o", tmp_path / "full")
    assert r.exit_code == 0, r.output
    full = _npys(tmp_path / "full" / "clip.mov.frames")
    assert len(full) == 12
    # smoothing changes the maps after the first frame
    r = _segment(video, "--prob", "npy", "-o", tmp_path / "plain")
    plain = _npys(tmp_path / "plain" / "clip.mov.frames")
    names = sorted(full)
    assert np.abs(full[names[0]] - plain[names[0]]).max() <= 1e-5  # the first frame has no past
    assert np.abs(full[names[5]] - plain[names[5]]).max() > 1e-3
    # frames 6..8 missing (as after a kill): the rerun recomputes them with frames 4 and 5 as context
    part = tmp_path / "part"
    r = _segment(video, *args, "-o", part)
    for name in names[6:9]:
        (part / "clip.mov.frames" / name).unlink()
    (part / "clip.mov.a_photo_of_a_heart-b77ebe34fae7.mask.mp4").unlink()
    r = _segment(video, *args, "-o", part)
    assert r.exit_code == 0, r.output
    assert "3 segmented" in r.output
    resumed = _npys(part / "clip.mov.frames")
    # equal up to the rounding of batched backbone passes (the resumed frames ran in other batches)
    assert all(np.abs(resumed[n] - full[n]).max() <= 1e-5 for n in names)
    mask_video = part / "clip.mov.a_photo_of_a_heart-b77ebe34fae7.mask.mp4"
    with av.open(str(mask_video)) as c:
        assert sum(1 for _ in c.decode(video=0)) == 12


def test_a_killed_video_run_resumes(tmp_path):
    video = _write_video(tmp_path / "clip.mov", _frames(60, size=128))
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "clipseg", "segment", str(video), "-w", "world", "-p", PROMPT, "--prob", "npy",
           "-o", str(out), "--no-progress", "--batch-size", "2", "--threads", "1"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 60
    frames_dir = out / "clip.mov.frames"
    while time.time() < deadline and len(list(frames_dir.glob("*.prob.npy"))) < 5 and proc.poll() is None:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    before = len(list(frames_dir.glob("*.prob.npy")))
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert len(list(frames_dir.glob("*.prob.npy"))) == 60
    assert f"{before} skipped" in r.stderr or before == 60
    ref = tmp_path / "ref"
    subprocess.run([*cmd[:-9], "--prob", "npy", "-o", str(ref), "--no-progress"], check=True, capture_output=True,
                   timeout=300)
    got, want = _npys(frames_dir), _npys(ref / "clip.mov.frames")
    assert got.keys() == want.keys() and all(np.abs(got[n] - want[n]).max() <= 1e-5 for n in got)


def test_video_output_names_are_injective():
    assert naming.frames_folder("clip.mov") == "clip.mov.frames"
    assert naming.folder_component("clip.mov.frames") == "clip.mov.frames.d"  # an input folder of that name
    assert naming.output_name("clip.mov", "mask-video", prompt="cat") == "clip.mov.cat.mask.mp4"
    assert naming.folder_component("x.mp4") == "x.mp4.d"


def test_bad_videos_are_one_line_each_and_written_frames_stay(tmp_path):
    good = _write_video(tmp_path / "good.mov", _frames(4))
    (tmp_path / "text.mp4").write_text("not a video")
    (tmp_path / "empty.mp4").write_bytes(b"")
    truncated = tmp_path / "cut.mkv"
    with av.open(str(truncated), "w", format="matroska") as out:  # a streamable container, then cut
        s = out.add_stream("ffv1", rate=10)
        s.width, s.height, s.pix_fmt = 96, 96, "bgr0"
        for f in _frames(10):
            for packet in s.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                out.mux(packet)
        for packet in s.encode():
            out.mux(packet)
    data = truncated.read_bytes()
    truncated.write_bytes(data[: len(data) * 6 // 10])
    no_frames = tmp_path / "none.mov"  # a container header and no frames
    no_frames.write_bytes(good.read_bytes()[:32])
    r = _segment(good, tmp_path / "text.mp4", tmp_path / "empty.mp4", truncated, no_frames, "-o", tmp_path / "o")
    assert "Traceback" not in r.output
    assert r.exit_code == 1
    assert "text.mp4: not a readable video" in r.output
    assert "empty.mp4: not a readable video" in r.output
    assert "none.mov: " in r.output
    masks = list((tmp_path / "o").rglob("*.mask.png"))
    assert len([m for m in masks if "good.mov.frames" in str(m)]) == 4
    cut = [m for m in masks if "cut.mkv.frames" in str(m)]
    assert 1 <= len(cut) < 10 or "cut.mkv" in r.output
    for m in masks:
        Image.open(m).load()  # every written frame output is a whole PNG
    big = _segment(good, "--max-pixels", "1000", "-o", tmp_path / "b")
    assert big.exit_code == 1 and "frames of 96x96 = 0.0 Mpx, above the limit" in big.output
    both = CliRunner().invoke(cli, ["segment", str(good), "-w", "world", "-p", PROMPT, "--temporal", "3", "--tiles", "2"])
    assert both.exit_code == 2 and "does not combine with --tiles" in both.output
