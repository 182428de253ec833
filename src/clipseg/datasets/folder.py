"""Your own data, in one of two layouts.

(a) `PhraseFolder`: root/images/, root/masks/ and a list file root/phrases.csv or
    root/phrases.jsonl. CSV: one "image,mask,phrase" row per sample (a header row with these
    names is optional; quote phrases that contain commas), or "image,mask,phrase,split" rows
    under that header. JSONL: one {"image": ..., "mask": ..., "phrase": ...,
    "split": ... (optional, then on every line)} object per line. Image and mask names are
    relative to images/ and masks/ (absolute paths are kept). An empty mask ("" or null)
    makes a negative sample: the phrase names nothing in the image. Masks: any image,
    nonzero (or alpha) = foreground; resized to the image if their sizes differ.
(b) `CocoFolder`: root/images/ and root/annotations.json (annotations_{split}.json) in COCO
    format (polygons or RLE); every (image, category) pair with annotations is a sample,
    the category name is the phrase.
Splits: split=None reads every row of phrases.csv / .jsonl (annotations.json). A split name
reads root/phrases_{split}.csv / .jsonl (annotations_{split}.json) if present, else the rows
of phrases.csv / .jsonl whose split column equals it; `NoSplitError` when neither exists.
The list is checked when the data set is built: a malformed line or a missing file raises
ValueError naming the list file and line (or the image id).
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from torch.utils.data import Dataset

from ..io.image_io import load_image, load_mask
from .sample import Sample
from .coco_json import CocoIndex
from .common import SampleTransform, require


@dataclass(frozen=True)
class FolderConfig:
    image_size: int = 352
    template: str = "{}"


@dataclass(frozen=True)
class FolderEntry:
    image: Path
    mask: Path | None  # None: negative sample
    phrase: str


class NoSplitError(FileNotFoundError):
    """A split was asked for, but there is neither a list for it nor a split column to select it by."""


def _find_list(root: Path, stem: str) -> Path | None:
    for ext in (".csv", ".jsonl"):
        if (root / f"{stem}{ext}").exists():
            return root / f"{stem}{ext}"
    return None


def _list_file(root: Path, split: str | None) -> tuple[Path, str | None]:
    """(list file, split to select by its split column or None)."""
    plain = _find_list(root, "phrases")
    if split is None:
        if plain is None:
            raise FileNotFoundError(f"no list file: expected '{root / 'phrases.csv'}' or '{root / 'phrases.jsonl'}'")
        return plain, None
    own = _find_list(root, f"phrases_{split}")
    if own is not None:
        return own, None
    if plain is None:
        raise FileNotFoundError(
            f"no list file for split '{split}': expected '{root / f'phrases_{split}.csv'}' or "
            f"'{root / f'phrases_{split}.jsonl'}', or phrases.csv / .jsonl with a split column"
        )
    return plain, split


HEADERS = (["image", "mask", "phrase"], ["image", "mask", "phrase", "split"])


def _csv_rows(path: Path):
    """(line, image, mask, phrase, split or None). 3 fields per row; 4 (the last a split) only
    under the header "image,mask,phrase,split", so that an unquoted comma in a phrase is not
    mistaken for a split column."""
    width = 3
    with open(path, newline="", encoding="utf-8") as f:
        for n, row in enumerate(csv.reader(f), start=1):
            if not row or all(not c.strip() for c in row):
                continue
            if n == 1 and [c.strip().lower() for c in row] in HEADERS:
                width = len(row)
                continue
            if len(row) != width:
                expected = "'image,mask,phrase,split' (as the header says)" if width == 4 else (
                    "'image,mask,phrase' (quote phrases with commas; a split column needs the header "
                    "'image,mask,phrase,split')")  # fmt: skip
                raise ValueError(f"{path}:{n}: expected {width} fields {expected}, got {len(row)}: {row!r}")
            split = row[3].strip() if width == 4 else None
            if split == "":
                raise ValueError(f"{path}:{n}: the split column is empty")
            yield n, row[0].strip(), row[1].strip(), row[2].strip(), split


def _jsonl_rows(path: Path):
    with_split = None
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                raise ValueError(f"{path}:{n}: not a JSON object: {e}") from None
            if not isinstance(obj, dict) or "image" not in obj or "phrase" not in obj:
                raise ValueError(f"{path}:{n}: expected an object with 'image', 'mask', 'phrase': {line.strip()!r}")
            if with_split is None:
                with_split = "split" in obj
            elif with_split != ("split" in obj):
                raise ValueError(f"{path}:{n}: 'split' must be given on every line or on none: {line.strip()!r}")
            split = str(obj["split"]).strip() if with_split and obj["split"] is not None else None
            if with_split and not split:
                raise ValueError(f"{path}:{n}: the split is empty: {line.strip()!r}")
            yield n, str(obj["image"]).strip(), str(obj.get("mask") or "").strip(), str(obj["phrase"]).strip(), split


class PhraseFolder(Dataset):
    """Layout (a): images, masks and a phrase list (class_name = the phrase)."""

    def __init__(self, root: str | Path, split: str | None = None, config: FolderConfig = FolderConfig()):
        self.root, self.config = Path(root), config
        self.transform = SampleTransform.of_size(config.image_size)
        image_dir = require(self.root / "images", "image folder")
        mask_dir = require(self.root / "masks", "mask folder")
        self.list_file, select = _list_file(self.root, split)
        rows = list(_csv_rows(self.list_file) if self.list_file.suffix == ".csv" else _jsonl_rows(self.list_file))
        self.splits = sorted({r[4] for r in rows if r[4] is not None})  # values of the split column, if any
        if select is not None:
            if rows and not self.splits:
                raise NoSplitError(
                    f"'{self.list_file}' has no split column, so split '{select}' cannot be selected: add one "
                    f"(CSV: header 'image,mask,phrase,split'; JSONL: a \"split\" key), write "
                    f"'{self.root / f'phrases_{select}.csv'}', or read every row (split None; evaluation: --split none)"
                )
            rows = [r for r in rows if r[4] == select]
            if not rows:
                raise ValueError(f"'{self.list_file}' lists no samples of split '{select}' "
                                 f"(its split column holds: {', '.join(self.splits)})")  # fmt: skip
        self.entries: list[FolderEntry] = []
        for n, image, mask, phrase, _ in rows:
            where = f"{self.list_file}:{n}"
            if not image or not phrase:
                raise ValueError(f"{where}: the image name and the phrase must not be empty")
            image_path = image_dir / image
            if not image_path.is_file():
                raise ValueError(f"{where}: image '{image}' not found at '{image_path}'")
            mask_path = mask_dir / mask if mask else None
            if mask_path is not None and not mask_path.is_file():
                raise ValueError(f"{where}: mask '{mask}' not found at '{mask_path}'")
            self.entries.append(FolderEntry(image_path, mask_path, phrase))
        if not self.entries:
            raise ValueError(f"'{self.list_file}' lists no samples")

    def __len__(self) -> int:
        return len(self.entries)

    def __getitem__(self, index: int) -> Sample:
        entry = self.entries[index]
        image = load_image(entry.image)
        if entry.mask is None:
            mask = np.zeros((image.height, image.width), dtype=bool)
        else:
            mask = load_mask(entry.mask, size=(image.width, image.height))
        return Sample(
            image=self.transform.image(image),
            mask=self.transform.mask(mask),
            phrase=self.config.template.format(entry.phrase),
            support=None,
            class_name=entry.phrase,
            is_negative=entry.mask is None,
        )


class CocoFolder(Dataset):
    """Layout (b): COCO-style annotations; one sample per (image, category), class_name = category."""

    def __init__(self, root: str | Path, split: str | None = None, config: FolderConfig = FolderConfig()):
        self.root, self.config = Path(root), config
        self.transform = SampleTransform.of_size(config.image_size)
        image_dir = require(self.root / "images", "image folder")
        name = "annotations.json" if split is None else f"annotations_{split}.json"
        if split is not None and not (self.root / name).exists() and (self.root / "annotations.json").exists():
            raise NoSplitError(
                f"no '{self.root / name}' for split '{split}' (COCO lists have no split column): write it, "
                f"or read '{self.root / 'annotations.json'}' (split None; evaluation: --split none)"
            )
        self.index = CocoIndex(self.root / name, image_dir)
        for image in self.index.images.values():
            if not image.path.is_file():
                raise ValueError(f"{self.index.annotation_file}: image id {image.id}: file '{image.path}' not found")
        self.pairs = self.index.pairs()
        if not self.pairs:
            raise ValueError(f"'{self.index.annotation_file}' has no annotations")

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> Sample:
        image_id, category_id = self.pairs[index]
        name = self.index.categories[category_id]
        return Sample(
            image=self.transform.image(load_image(self.index.images[image_id].path)),
            mask=self.transform.mask(self.index.mask(image_id, category_id)),
            phrase=self.config.template.format(name),
            support=None,
            class_name=name,
        )
