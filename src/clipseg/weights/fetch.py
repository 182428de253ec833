"""Getting pretrained files: the Hugging Face hub and plain URLs, cached on disk."""

from __future__ import annotations

import hashlib
import os
import urllib.request
import zipfile
from pathlib import Path

from .errors import CheckpointError
from .registry import PretrainedSource

OFFLINE_HINT = (
    "No network? Download the files on a machine that has it and pass their local path: "
    "`hf download CIDAS/clipseg-rd64-refined --local-dir clipseg-rd64-refined` "
    "then `--weights clipseg-rd64-refined` (or load_clipseg('clipseg-rd64-refined')). "
    "Without real weights, `clipseg demo`, `segment` and `serve` run the embedded generated-world model ('world')."
)


def default_cache_dir() -> Path:
    return Path(os.environ.get("CLIPSEG_CACHE", Path.home() / ".cache" / "clipseg"))


def fetch_hub(repo_id: str, cache_dir: Path | None = None) -> Path:
    """Download (or find in the HF cache) a full model repo; returns its local folder."""
    try:
        from huggingface_hub import snapshot_download
    except ImportError:
        raise CheckpointError(
            f"'{repo_id}' is a Hugging Face hub model and huggingface_hub is not installed "
            "(pip install 'clipseg[hub]'). " + OFFLINE_HINT
        ) from None
    try:
        folder = snapshot_download(
            repo_id,
            allow_patterns=["config.json", "model.safetensors", "model*.safetensors", "*.safetensors.index.json"],
            cache_dir=str(cache_dir) if cache_dir else None,
        )
    except Exception as e:
        raise CheckpointError(
            f"could not get '{repo_id}' from the Hugging Face hub ({type(e).__name__}: {str(e).splitlines()[0][:200]}). "
            + OFFLINE_HINT
        ) from None
    return Path(folder)


def fetch_url(source: PretrainedSource, cache_dir: Path | None = None, filename: str | None = None) -> Path:
    """Download a single file to the cache (atomically), checking its sha256 when known."""
    cache = (cache_dir or default_cache_dir()) / "files"
    target = cache / (filename or Path(source.location).name)
    if target.exists():
        return target
    cache.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(target.suffix + ".part")
    digest = hashlib.sha256()
    try:
        with urllib.request.urlopen(source.location, timeout=30) as r, open(tmp, "wb") as f:
            while chunk := r.read(1 << 20):
                digest.update(chunk)
                f.write(chunk)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise CheckpointError(f"could not download {source.name} from {source.location}: {e}. " + OFFLINE_HINT) from None
    if source.sha256 and digest.hexdigest() != source.sha256:
        tmp.unlink(missing_ok=True)
        raise CheckpointError(f"{source.name}: downloaded file has sha256 {digest.hexdigest()}, expected {source.sha256}")
    os.replace(tmp, target)
    return target


def fetch_zip_member(source: PretrainedSource, cache_dir: Path | None = None) -> Path:
    """Download a zip once and extract the named member (found by its base name)."""
    target = (cache_dir or default_cache_dir()) / "files" / source.member
    if target.exists():
        return target
    archive = fetch_url(source, cache_dir, filename="authors-weights.zip")
    try:
        with zipfile.ZipFile(archive) as zf:
            name = next((n for n in zf.namelist() if Path(n).name == source.member), None)
            if name is None:
                raise CheckpointError(f"{archive} has no {source.member} (members: {zf.namelist()[:10]})")
            tmp = target.with_suffix(".part")
            tmp.write_bytes(zf.read(name))
            os.replace(tmp, target)
    except zipfile.BadZipFile as e:
        raise CheckpointError(f"{archive} is not a valid zip ({e}); delete it and try again") from None
    return target


def package_file(location: str) -> Path:
    """A file shipped in clipseg/assets (CheckpointError when the installation lacks it)."""
    from .registry import ASSETS_DIR

    path = ASSETS_DIR / location
    if not path.is_file():
        raise CheckpointError(f"{path}: this clipseg installation lacks its shipped file '{location}' "
                              "(a partial copy of the package?); reinstall clipseg")
    return path


def fetch(source: PretrainedSource, cache_dir: Path | None = None) -> Path:
    if source.kind == "package":
        return package_file(source.location)
    if source.kind == "hf-hub":
        return fetch_hub(source.location, cache_dir)
    if source.kind == "zip-member":
        return fetch_zip_member(source, cache_dir)
    return fetch_url(source, cache_dir)
