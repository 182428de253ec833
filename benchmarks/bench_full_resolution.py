"""Full resolution, measured on generated scenes with exact masks (the world generator draws
polygons at any scale):

    python benchmarks/bench_full_resolution.py [--quick]

(a) scenes at 512 and 1024 px with large objects: IoU and boundary F (tolerance 0.75 % of the
    diagonal) at full resolution, bilinear vs refined, and the milliseconds per megapixel;
(b) 2048 px canvases with many small objects: per-object recall (IoU >= 0.5 near the
    object) by object size, the area marked for absent classes, and the time, for the
    whole-image pass alone vs tiles (auto);
(c) a generated clip of moving objects: per-frame mIoU and flicker, with and without
    temporal smoothing, and frames per second (see `video_table`).
The model is the shipped world model (its decision grid is 8 x 8 patches); the speed of the
real architecture is timed with ViT-B/16 CLIPSeg with random weights (its maps mean nothing).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

import clipseg
from clipseg.evaluation.boundary import boundary_f, boundary_tolerance
from clipseg.inference import Predictor
from clipseg.model import build_clipseg
from clipseg.worldgen.scenes import SceneConfig, generate_scene
from clipseg.worldgen.vocabulary import SHAPE_CLASSES

from common import environment, write_results


def class_targets(scene) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    for o in scene.objects:
        out[o.shape] = out.get(o.shape, np.zeros(scene.hw, bool)) | o.mask
    return out


def prompt(shape: str) -> str:
    return f"a photo of a {shape}."


def refinement_table(p: Predictor, sizes, scenes: int) -> tuple[list[str], dict]:
    rows, data = [], {}
    for size in sizes:
        stats = {"bilinear": ([], []), "refined": ([], [])}
        t_model = t_refine = 0.0
        n_maps = 0
        for seed in range(scenes):
            sc = generate_scene(20_000 + seed, SceneConfig(image_size=size, min_objects=2, max_objects=4))
            t0 = time.perf_counter()
            p.set_image(sc.image)
            t_model += time.perf_counter() - t0
            tol = boundary_tolerance(*sc.hw)
            for shape, target in class_targets(sc).items():
                t0 = time.perf_counter()
                plain = p.predict([prompt(shape)])[0] >= p.threshold
                t1 = time.perf_counter()
                refined = p.predict([prompt(shape)], refine=True)[0] >= p.threshold
                t2 = time.perf_counter()
                t_model += t1 - t0
                t_refine += (t2 - t1) - (t1 - t0)
                n_maps += 1
                for name, m in (("bilinear", plain), ("refined", refined)):
                    stats[name][0].append((m & target).sum() / max(1, (m | target).sum()))
                    stats[name][1].append(boundary_f(m, target, tol))
        mpx = size * size / 1e6
        for name, (ious, bfs) in stats.items():
            ms = (t_refine / n_maps * 1000 / mpx) if name == "refined" else 0.0
            rows.append(f"| {size} px | {name} | {np.mean(ious):.3f} | {np.mean(bfs):.3f} | "
                        + (f"{ms:.0f} (+ model {t_model / n_maps * 1000 / mpx:.0f})" if name == "refined"
                           else f"model {t_model / n_maps * 1000 / mpx:.0f}") + " |")
            data[f"{size}/{name}"] = {"iou": float(np.mean(ious)), "boundary_f": float(np.mean(bfs)), "maps": n_maps}
        data[f"{size}/refine_ms_per_mpx"] = t_refine / n_maps * 1000 / mpx
        data[f"{size}/model_ms_per_mpx"] = t_model / n_maps * 1000 / mpx
    return rows, data


BINS = [(0, 0.001, "< 0.1 %"), (0.001, 0.003, "0.1-0.3 %"), (0.003, 0.01, "0.3-1 %"), (0.01, 1.0, ">= 1 %")]


def local_iou(pred: np.ndarray, obj: np.ndarray, bbox) -> float:
    """IoU of the object and the prediction within the object's box grown by half its size."""
    x0, y0, x1, y1 = bbox
    mx, my = (x1 - x0) // 2 + 1, (y1 - y0) // 2 + 1
    win = (slice(max(0, y0 - my), y1 + my), slice(max(0, x0 - mx), x1 + mx))
    a, b = pred[win], obj[win]
    return float((a & b).sum() / max(1, (a | b).sum()))


def tiles_table(p: Predictor, size: int, scenes: int) -> tuple[list[str], dict]:
    config = SceneConfig(image_size=size, min_objects=8, max_objects=14, small_fraction=(0.025, 0.05),
                         large_fraction=(0.06, 0.12))
    modes = {"global": None, "tiles (gate 2, the default)": 2.0, "tiles (gate 4)": 4.0, "tiles (no gate)": None}
    found = {mode: {label: [] for *_, label in BINS} for mode in modes}
    false_area = {mode: [] for mode in found}
    times = {mode: 0.0 for mode in found}
    rng = np.random.default_rng(0)
    for seed in range(scenes):
        sc = generate_scene(30_000 + seed, config)
        present = sorted({o.shape for o in sc.objects})
        absent = [c for c in rng.permutation(SHAPE_CLASSES) if c not in present][:3]
        for mode, gate in modes.items():
            t0 = time.perf_counter()
            if mode == "global":
                p.set_image(sc.image)
                probs = p.predict([prompt(c) for c in present + absent])
            else:
                p.set_image(sc.image, tiles="auto")
                probs = np.stack(list(p.maps([prompt(c) for c in present + absent], tile_gate=gate)))
            times[mode] += time.perf_counter() - t0
            masks = probs >= p.threshold
            for o in sc.objects:
                frac = o.area / (size * size)
                label = next(lbl for lo, hi, lbl in BINS if lo <= frac < hi)
                found[mode][label].append(local_iou(masks[present.index(o.shape)], o.mask, o.bbox) >= 0.5)
            false_area[mode] += [float(m.mean()) for m in masks[len(present):]]
    rows, data = [], {}
    for mode in found:
        cells = [f"{100 * np.mean(v):.0f} % ({len(v)})" if v else "-" for v in found[mode].values()]
        rows.append(f"| {mode} | " + " | ".join(cells) + f" | {100 * np.mean(false_area[mode]):.2f} % | "
                    f"{times[mode] / scenes:.2f} s |")
        data[mode] = {"recall": {k: float(np.mean(v)) if v else None for k, v in found[mode].items()},
                      "absent_area": float(np.mean(false_area[mode])), "seconds_per_image": times[mode] / scenes}
    return rows, data


def moving_clip(size: int, frames: int, seed: int, speed: float = 0.4):
    """Frames (H, W, 3) of a generated scene whose objects drift by `speed` px a frame (less
    than a pixel: the true masks of consecutive frames nearly agree), and each frame's true
    class masks."""
    from clipseg.worldgen.render import paint, shape_mask
    from clipseg.worldgen.scenes import make_background
    from clipseg.worldgen.vocabulary import COLOURS

    scene = generate_scene(seed, SceneConfig(image_size=size, min_objects=2, max_objects=3))
    rng = np.random.default_rng(seed)
    background = make_background(scene.background, scene.hw, rng)
    velocity = [rng.normal(size=2) for _ in scene.objects]
    velocity = [speed * v / np.linalg.norm(v) for v in velocity]
    images, targets = [], []
    for t in range(frames):
        canvas = background.copy()
        visible: list[np.ndarray] = []
        for o, v in zip(scene.objects, velocity):
            centre = (o.position[0] + v[0] * t, o.position[1] + v[1] * t)
            m = shape_mask(o.shape, o.size_px, o.rotation, centre, scene.hw)
            visible = [vm & ~m for vm in visible] + [m]
            paint(canvas, m, COLOURS[o.colour], o.texture, o.size_px, o.rotation, centre)
        per_class: dict[str, np.ndarray] = {}
        for o, m in zip(scene.objects, visible):
            per_class[o.shape] = per_class.get(o.shape, np.zeros(scene.hw, bool)) | m
        images.append(canvas)
        targets.append(per_class)
    return images, targets


def video_table(p: Predictor, size: int, clips: int, frames: int) -> tuple[list[str], dict]:
    from clipseg.runs.video import TemporalWindow

    rows, data = [], {}
    for width in (1, 3, 5):
        ious, flicker = [], []
        t_total = n_frames = 0
        for c in range(clips):
            images, targets = moving_clip(size, frames, 40_000 + c)
            classes = sorted(targets[0])
            window = TemporalWindow(width)
            previous = None
            t0 = time.perf_counter()
            for img, target in zip(images, targets):
                p.set_image(img)
                plan = p.plan([prompt(k) for k in classes])
                logits = window(p.term_logits(plan))
                from clipseg.inference.predictor import full_resolution_maps

                masks = np.stack(list(full_resolution_maps(logits, p.original_size, plan))) >= p.threshold
                ious += [(m & target[k]).sum() / max(1, (m | target[k]).sum()) for m, k in zip(masks, classes)]
                if previous is not None:
                    flicker += [1 - (a & b).sum() / max(1, (a | b).sum()) for a, b in zip(masks, previous)]
                previous = masks
            t_total += time.perf_counter() - t0
            n_frames += len(images)
        label = "off" if width == 1 else f"window of {width} frames"
        rows.append(f"| {label} | {np.mean(ious):.3f} | {np.mean(flicker):.4f} | {n_frames / t_total:.1f} |")
        data[label] = {"miou": float(np.mean(ious)), "flicker": float(np.mean(flicker)), "fps": n_frames / t_total}
    return rows, data


def cli_video_fps(size: int, frames: int) -> float:
    """Frames per second of `clipseg segment VIDEO` (decoding thread, batches of 8, masks written)."""
    import tempfile

    from click.testing import CliRunner

    from clipseg.cli.main import cli
    from clipseg.io.video import write_lossless_video

    images, _ = moving_clip(size, frames, 41_000)
    with tempfile.TemporaryDirectory() as tmp:
        path = write_lossless_video(Path(tmp) / "clip.mov", images, 25)
        t0 = time.perf_counter()
        r = CliRunner().invoke(cli, ["segment", str(path), "-w", "world", "-p", prompt("heart"), "-o", f"{tmp}/o",
                                     "--no-progress"])
        assert r.exit_code == 0, r.output
        return frames / (time.perf_counter() - t0)


def vit_speed(size: int) -> dict:
    """Seconds of ViT-B/16 CLIPSeg (random weights) on one image: the global pass (set_image +
    predict of one prompt), what refinement adds, and tiles (auto) in all."""
    model = build_clipseg("rd64-uni-refined").eval()
    p = Predictor(model)
    img = (np.random.default_rng(0).random((size, size, 3)) * 255).astype(np.uint8)
    p.set_image(img)  # a warm-up: the first pass allocates
    p.predict(["a cat"])
    t0 = time.perf_counter()
    p.set_image(img)
    probs = p.predict(["a cat"])
    t1 = time.perf_counter()
    p.predict(["a cat"])
    t2 = time.perf_counter()
    list(p.maps(["a cat"], refine=True, threshold=float(np.quantile(probs, 0.5))))  # half the map above: refined
    t3 = time.perf_counter()
    p.set_image(img, tiles="auto")
    p.predict(["a cat"])
    t4 = time.perf_counter()
    crops = len(p.image_state.tiles.grid) if p.image_state.tiles else 1
    return {"global": t1 - t0, "refine adds": (t3 - t2) - (t2 - t1), "tiles": t4 - t3, "crops": crops}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="fewer scenes")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = ap.parse_args()
    torch.set_num_threads(2)
    p = Predictor(clipseg.load("world"))
    n = 4 if args.quick else 16
    lines = ["# Full resolution on generated scenes (world model)", "",
             f"{environment()['cpu']}, torch threads {torch.get_num_threads()}.", "",
             "(a) large objects: bilinear upsampling vs edge-aware refinement", "",
             "| image | maps | IoU | boundary F | ms per Mpx |", "|---|---|---:|---:|---:|"]
    rows_a, data_a = refinement_table(p, (512, 1024), n)
    lines += rows_a
    rows_b, data_b = tiles_table(p, 2048, max(3, n // 2))
    lines += ["", "(b) 2048 px canvases, many small objects: per-object recall (IoU >= 0.5) by object area "
                  "(share of the image; objects counted), area marked for absent classes, seconds per image "
                  "(all prompts)", "",
              "| pass | " + " | ".join(lbl for *_, lbl in BINS) + " | absent-class area | time |",
              "|---|" + "---:|" * (len(BINS) + 2)]
    lines += rows_b
    rows_c, data_c = video_table(p, 256, 2 if args.quick else 6, 24 if args.quick else 48)
    fps_cli = cli_video_fps(256, 48 if args.quick else 200)
    lines += ["", "(c) generated clips of objects drifting 0.4 px a frame (256 px): per-frame mIoU, flicker (mean "
                  "1 - IoU of consecutive masks), frames per second of the Predictor loop", "",
              "| temporal smoothing | mIoU | flicker | frames/s |", "|---|---:|---:|---:|"]
    lines += rows_c
    lines += ["", f"`clipseg segment clip.mov` (decoding thread, batches of 8, one mask PNG a frame): "
                  f"{fps_cli:.0f} frames/s at 256 px."]
    speed = {size: vit_speed(size) for size in (2048, 3464)}
    lines += ["", "ViT-B/16 with random weights (speed only), seconds per image and prompt:", "",
              "| image | global pass | refinement adds | tiles (auto) |", "|---|---:|---:|---:|"]
    for size, d in speed.items():
        lines.append(f"| {size} px ({size * size / 1e6:.0f} Mpx) | {d['global']:.2f} | {d['refine adds']:.2f} | "
                     f"{d['tiles']:.2f} ({d['crops']} crops) |")
    write_results(args.out, "full_resolution", {"environment": environment(), "refine": data_a, "tiles": data_b,
                                                "video": data_c, "video_cli_fps": fps_cli, "vit_b16_seconds": speed},
                  "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
