"""Writers of tiny data sets in the exact on-disk formats the readers expect."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image


def write_image(path: Path, width: int, height: int, seed: int = 0) -> None:
    """A small random RGB JPEG."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8)).save(path, quality=90)


def write_label_png(path: Path, labels: np.ndarray) -> None:
    """A VOC-style palette PNG of class indices."""
    path.parent.mkdir(parents=True, exist_ok=True)
    im = Image.fromarray(labels.astype(np.uint8), mode="P")
    im.putpalette([v for i in range(256) for v in (i * 7 % 256, i * 13 % 256, i * 29 % 256)])
    im.save(path)


def rect_polygon(x0: float, y0: float, x1: float, y1: float) -> list[list[float]]:
    return [[x0, y0], [x1, y0], [x1, y1], [x0, y1]]


# --- PhraseCut -----------------------------------------------------------------------------
def write_phrasecut(root: Path, split: str, tasks: list[dict], image_size=(64, 48)) -> None:
    """tasks: dicts with image_id, phrase, Polygons (task_id and instance_boxes are filled in)."""
    entries = []
    for i, t in enumerate(tasks):
        boxes = []
        for instance in t["Polygons"]:
            pts = np.array([p for poly in instance for p in poly], dtype=float)
            x0, y0 = pts.min(0)
            x1, y1 = pts.max(0)
            boxes.append([x0, y0, x1 - x0 + 1, y1 - y0 + 1])
        entries.append(
            {
                "task_id": f"{t['image_id']}__{i}",
                "image_id": t["image_id"],
                "ann_ids": [i],
                "instance_boxes": boxes,
                "Polygons": t["Polygons"],
                "phrase": t["phrase"],
                "phrase_structure": {"name": t["phrase"].split()[-1], "attributes": [], "type": "name"},
            }
        )
        image = root / "images" / f"{t['image_id']}.jpg"
        if not image.exists():
            write_image(image, *image_size, seed=t["image_id"])
    root.mkdir(parents=True, exist_ok=True)
    (root / f"refer_{split}.json").write_text(json.dumps(entries))


def phrasecut_tasks(n_images: int = 6) -> list[dict]:
    """Per image: a 'red car' box (shared phrase), a 'tree' of two instances, and a unique phrase."""
    tasks = []
    for k in range(n_images):
        image_id = 1000 + k
        x = 4 + 4 * k
        tasks.append({"image_id": image_id, "phrase": "red car", "Polygons": [[rect_polygon(x, 10, x + 19, 29)]]})
        tasks.append(
            {
                "image_id": image_id,
                "phrase": "tree",
                "Polygons": [[rect_polygon(0, 0, 9, 9)], [rect_polygon(50, 30, 59, 39), rect_polygon(40, 40, 45, 45)]],
            }
        )
        tasks.append({"image_id": image_id, "phrase": f"unique thing {k}", "Polygons": [[rect_polygon(30, 5, 45, 20)]]})
    return tasks


# --- Pascal VOC (Pascal-5i and zero-shot) ---------------------------------------------------
def write_voc(root: Path, n_images: int = 8, size=(40, 32)) -> dict[str, np.ndarray]:
    """VOC2012-like folder. Image k shows classes (k % 4) + 1 and 14 (motorbike) in two boxes,
    with a 255 border around the first. Writes SegmentationClass and SegmentationClassAug,
    ImageSets/Segmentation/{train,val}.txt and HSNet split lists splits/pascal/{trn,val}/fold*.txt."""
    w, h = size
    labels_by_id = {}
    for k in range(n_images):
        image_id = f"2008_{k:06d}"
        labels = np.zeros((h, w), dtype=np.uint8)
        labels[3:15, 3:20] = 255
        labels[4:14, 4:19] = (k % 4) + 1
        labels[18:30, 22:38] = 14
        write_image(root / "JPEGImages" / f"{image_id}.jpg", w, h, seed=k)
        write_label_png(root / "SegmentationClass" / f"{image_id}.png", labels)
        write_label_png(root / "SegmentationClassAug" / f"{image_id}.png", labels)
        labels_by_id[image_id] = labels
    ids = sorted(labels_by_id)
    seg = root / "ImageSets" / "Segmentation"
    seg.mkdir(parents=True, exist_ok=True)
    (seg / "val.txt").write_text("\n".join(ids) + "\n")
    (seg / "train.txt").write_text("\n".join(ids[:2]) + "\n")
    for split in ("trn", "val"):
        for fold in range(4):
            classes = range(5 * fold + 1, 5 * fold + 6)
            lines = [f"{i}__{c}" for i, lab in labels_by_id.items() for c in classes if (lab == c).any()]
            path = root / "splits" / "pascal" / split / f"fold{fold}.txt"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("\n".join(lines) + ("\n" if lines else ""))
    return labels_by_id


# --- COCO-format files (COCO-20i, LVIS, user exports) ---------------------------------------
def encode_rle_string(mask: np.ndarray) -> dict:
    """Compressed COCO RLE of a (h, w) bool mask (pycocotools' rleToString)."""
    flat = mask.T.flatten().astype(np.uint8)  # column-major
    runs, current, count = [], 0, 0
    for v in flat:
        if v != current:
            runs.append(count)
            current, count = v, 0
        count += 1
    runs.append(count)
    out = []
    for i, x in enumerate(runs):
        if i > 2:
            x -= runs[i - 2]
        more = True
        while more:
            c = x & 0x1F
            x >>= 5
            more = (x != -1) if (c & 0x10) else (x != 0)
            if more:
                c |= 0x20
            out.append(chr(c + 48))
    return {"size": [int(mask.shape[0]), int(mask.shape[1])], "counts": "".join(out)}


def flat_rect(x0: float, y0: float, x1: float, y1: float) -> list[float]:
    return [x0, y0, x1, y0, x1, y1, x0, y1]


def write_coco_json(path: Path, images: list[dict], annotations: list[dict], categories: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    for i, ann in enumerate(annotations):
        ann.setdefault("id", i + 1)
        ann.setdefault("iscrowd", 0)
    path.write_text(json.dumps({"images": images, "annotations": annotations, "categories": categories}))


def write_lvis_objects(root: Path) -> None:
    """Image 0: armchair (300 px + a 25 px instance), bus (300 px), dog (25 px); image 1: only two
    categories; image 2: only small objects; image 3: bus, dog, umbrella (400 px, "area" given)."""
    names = ["armchair", "bus_(vehicle)", "dog", "umbrella"]
    cats = [{"id": i + 1, "name": n, "synonyms": [n]} for i, n in enumerate(names)]
    images = []
    for k in range(4):
        write_image(root / "val2017" / f"{k:012d}.jpg", 40, 30, seed=k)
        images.append({"id": k, "coco_url": f"http://images.cocodataset.org/val2017/{k:012d}.jpg", "width": 40,
                       "height": 30})  # fmt: skip
    anns = [
        {"image_id": 0, "category_id": 1, "segmentation": [flat_rect(0, 0, 19, 14)]},
        {"image_id": 0, "category_id": 1, "segmentation": [flat_rect(25, 0, 29, 4)]},
        {"image_id": 0, "category_id": 2, "segmentation": [flat_rect(20, 15, 39, 29)]},
        {"image_id": 0, "category_id": 3, "segmentation": [flat_rect(0, 20, 4, 24)]},
        {"image_id": 1, "category_id": 3, "segmentation": [flat_rect(0, 0, 19, 19)]},
        {"image_id": 1, "category_id": 4, "segmentation": [flat_rect(20, 0, 39, 19)]},
        {"image_id": 2, "category_id": 1, "segmentation": [flat_rect(0, 0, 4, 4)]},
        {"image_id": 2, "category_id": 3, "segmentation": [flat_rect(10, 10, 14, 14)]},
        {"image_id": 2, "category_id": 4, "segmentation": [flat_rect(20, 20, 24, 24)]},
        {"image_id": 3, "category_id": 2, "segmentation": [flat_rect(0, 0, 4, 4)]},
        {"image_id": 3, "category_id": 3, "segmentation": [flat_rect(10, 10, 14, 14)]},
        {"image_id": 3, "category_id": 4, "segmentation": [flat_rect(20, 10, 39, 29)], "area": 400.0},
    ]
    write_coco_json(root / "lvis_v1_val.json", images, anns, cats)


def write_phrase_folder(root: Path, rows: list[tuple[str, str, str]], fmt: str = "csv", header: bool = True) -> None:
    """rows: (image, mask, phrase); images and masks named in rows are created (40x30)."""
    for k, (image, mask, _) in enumerate(rows):
        if image and not (root / "images" / image).exists():
            write_image(root / "images" / image, 40, 30, seed=k)
        if mask and not (root / "masks" / mask).exists():
            m = np.zeros((30, 40), dtype=np.uint8)
            m[5:15, 10:30] = 255
            (root / "masks").mkdir(parents=True, exist_ok=True)
            Image.fromarray(m).save(root / "masks" / mask)
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "masks").mkdir(parents=True, exist_ok=True)
    if fmt == "csv":
        lines = (["image,mask,phrase"] if header else []) + [f'{i},{m},"{p}"' for i, m, p in rows]
        (root / "phrases.csv").write_text("\n".join(lines) + "\n")
    else:
        lines = [json.dumps({"image": i, "mask": m or None, "phrase": p}) for i, m, p in rows]
        (root / "phrases.jsonl").write_text("\n".join(lines) + "\n")
