"""Output file names that are injective by construction.

One output path per (input image, prompt, kind), whatever the names of the inputs and the
prompts. An output file is

    OUT / D1 / ... / Dk / F . [PROMPT_KEY .] [SET_KEY .] KIND . EXT

- `F` is the input's whole file name, extension included (`a.jpg` and `a.png` differ);
- `D1..Dk` are the input's folders below its root, each through `folder_component`,
  which is injective and never yields a name ending in an output extension, `.frames` or
  `.d`: so no output file can be a folder of another output, nor the legend `prompts.json`;
- a video `V` (a file) has its frames' outputs in `V.frames/frame-NNNNNN.KEY.KIND.EXT` and
  its mask videos in `V.KEY.mask.mp4`;
- with several inputs, each root gets a top-level folder of its own name, made unique
  (`cam1`, `cam2`; two roots of the same name, also up to letter case, get a hash of their
  absolute path);
- input names that differ only in letter case (`a.jpg`, `A.jpg`, from a case-sensitive
  file system) cannot both be written to a case-insensitive output folder:
  `case_collisions` finds them and the run refuses before it starts;
- `PROMPT_KEY` (`prompt_key`) is a fixed function of the prompt itself, never of its
  position: the prompt when it is plain lower-case `[a-z0-9_]`, else a readable part plus a
  hash of the prompt's identity (text, or the support files' sha256). It holds no dot, and
  keys of different prompts differ in more than letter case ("Cat" and "cat" do not
  overwrite each other on macOS or Windows).
- `SET_KEY` (`set_key`) names the outputs that combine all prompts (overlay, label map,
  RLE): a hash of the ordered prompt keys and the thresholds, so a run with another prompt
  order writes other files instead of keeping label maps whose labels mean other prompts.
- `KIND.EXT` is one of `KIND_SUFFIXES`; read from the right, the name splits uniquely
  because keys hold no dot.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Sequence

import numpy as np

# kind -> file-name ending; every ending is unique and none is a suffix of another
KIND_SUFFIXES = {
    "prob-png": ".prob.png",
    "prob-npy": ".prob.npy",
    "mask": ".mask.png",
    "overlay": ".overlay.png",
    "labels": ".labels.png",
    "rle": ".rle.json",
    "cutout": ".cutout.png",
    "regions": ".regions.json",
    "mask-video": ".mask.mp4",
}
OUTPUT_EXTENSIONS = (".png", ".npy", ".json", ".mp4")
FRAMES_SUFFIX = ".frames"  # the folder of a video's frame outputs: VIDEO_FILE_NAME.frames
LEGEND_NAME = "prompts.json"
_PLAIN = re.compile(r"[a-z0-9_]{1,48}")
_HASHED_KEY_CHARS = 12


def _sha(text: str, n: int) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:n]


def digest(source) -> str:
    """sha256 (16 hex digits) of a file's, an array's or a bytes object's contents; '' for others (PIL images)."""
    if isinstance(source, (str, Path)):
        return hashlib.sha256(Path(source).read_bytes()).hexdigest()[:16]
    if isinstance(source, np.ndarray):
        return hashlib.sha256(np.ascontiguousarray(source).tobytes()).hexdigest()[:16]
    if isinstance(source, (bytes, bytearray, memoryview)):
        return hashlib.sha256(source).hexdigest()[:16]
    return ""


def prompt_identity(prompt) -> str:
    """What a prompt was made from, comparable across runs and front ends: the text, or the
    sha256 of the support files' bytes (the same for a file given to the command line and
    uploaded to the service)."""
    from ..prompts import MixedPrompt, VisualPrompt
    from ..prompts.expression import Expression, render

    if isinstance(prompt, Expression):  # the whole expression, its terms by their own identities
        return "expr:" + render(prompt, prompt_identity)
    if isinstance(prompt, str):
        return f"text:{prompt}"
    if isinstance(prompt, VisualPrompt):
        return f"visual:{digest(prompt.image)}/{digest(prompt.mask)}"
    if isinstance(prompt, MixedPrompt):
        return f"mixed:{prompt.text_weight!r}:{prompt.text}|{prompt_identity(prompt.visual)}"
    if hasattr(prompt, "detach"):  # a ready embedding tensor
        return "embedding:" + hashlib.sha256(prompt.detach().float().cpu().numpy().tobytes()).hexdigest()[:16]
    return f"unknown:{type(prompt).__name__}"


def prompt_key(name: str, identity: str) -> str:
    """File-name key of one prompt: `name` itself if it is a plain text prompt of
    [a-z0-9_] (at most 48), else `READABLE-HASH` (the readable part without '-'; the hash is
    lower-case hex, so two keys never differ in letter case only).

    identity: what the prompt is (`text:...`, `visual:<sha>/<sha>`, ...). Plain keys hold no
    '-', hashed ones exactly one: the two kinds never meet.
    """
    if identity == f"text:{name}" and _PLAIN.fullmatch(name):
        return name
    readable = re.sub(r"[^A-Za-z0-9_]+", "_", name).strip("_")[:40] or "prompt"
    return f"{readable}-{_sha(identity, _HASHED_KEY_CHARS)}"


def set_key(prompt_keys: Sequence[str], threshold: float, none_threshold: float) -> str:
    """Key of the outputs that combine all prompts in this order (overlay, labels, RLE)."""
    blob = json.dumps({"prompts": list(prompt_keys), "threshold": threshold, "none_threshold": none_threshold})
    return "set" + _sha(blob, 10)


def folder_component(name: str) -> str:
    """An input folder's name as an output folder's: unchanged unless it ends in an output
    extension, '.frames' or '.d', then '.d' is appended (injective; outputs never end in '.d',
    and no input folder's outputs land in a video's frames folder)."""
    if name.lower().endswith(OUTPUT_EXTENSIONS + (FRAMES_SUFFIX, ".d")):
        return name + ".d"
    return name


def frames_folder(video_file_name: str) -> str:
    """The output folder of a video's frames: its file name + '.frames' (an input folder of
    that name becomes '....frames.d', see `folder_component`)."""
    return video_file_name + FRAMES_SUFFIX


def output_name(file_name: str, kind: str, prompt: str | None = None, combined: str | None = None) -> str:
    """The output file name of one input file, for a kind and (per-prompt kinds) a prompt key."""
    parts = [file_name]
    if prompt is not None:
        parts.append(prompt)
    if combined is not None:
        parts.append(combined)
    return ".".join(parts) + KIND_SUFFIXES[kind]


def root_labels(roots: Sequence[tuple[str, str]]) -> list[str]:
    """Unique top-level names for several inputs: (name, absolute path) -> name, or
    name~HASH when other inputs have the same name (HASH of the absolute path)."""
    counts: dict[str, int] = {}
    for name, _ in roots:
        counts[name.casefold()] = counts.get(name.casefold(), 0) + 1
    return [name if counts[name.casefold()] == 1 else f"{name}~{_sha(absolute, 8)}" for name, absolute in roots]


def case_collisions(paths: Sequence[Sequence[str]]) -> list[tuple[str, str]]:
    """Pairs of output paths (as tuples of components) that are different but equal up to
    letter case: they would overwrite each other on a case-insensitive file system."""
    first: dict[tuple[str, ...], tuple[str, ...]] = {}
    pairs: list[tuple[str, str]] = []
    for parts in paths:
        parts = tuple(parts)
        other = first.setdefault(tuple(p.casefold() for p in parts), parts)
        if other != parts:
            pairs.append(("/".join(other), "/".join(parts)))
    return pairs


def is_case_insensitive(folder: Path) -> bool:
    """Whether `folder` (which must exist) lies on a file system that ignores letter case
    (macOS and Windows by default): a probe file is made and looked up in upper case."""
    import tempfile

    with tempfile.NamedTemporaryFile(prefix="clipseg-case-probe-", suffix=".tmp", dir=folder) as f:
        name = Path(f.name).name
        return (Path(folder) / name.upper()).exists()
