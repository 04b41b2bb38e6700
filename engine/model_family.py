"""Which model family a base model is, read from its model_index.json alone, before any weights.

The engine trains the families of engine.families (Stable Diffusion 1.x/2.x first: each family
says which pipeline classes and components it takes). Anything else (SD3, Flux, Kandinsky...)
used to be found only at the first forward pass, after a multi-GB download; `check` and the
engine now read the small model_index.json first (a local folder, or only that file from the Hub
or its cache) and refuse in one line.

Torch-free (huggingface_hub only, imported when a hub id is checked).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from engine.buckets import step_for
from engine.errors import DreamboothError, exit_code_for
from engine.families import FAMILIES, family_for
from engine.sources import builtin_model_path, kind_of

_FAMILIES = (  # (prefix of the pipeline class, what users call it)
    ("StableDiffusionXL", "SDXL"),
    ("StableDiffusion3", "Stable Diffusion 3"),
    ("Flux", "Flux"),
    ("Kandinsky", "Kandinsky"),
    ("PixArt", "PixArt"),
    ("StableCascade", "Stable Cascade"),
    ("IF", "DeepFloyd IF"),
)
#: What the engine trains, in messages: every family of engine.families.
SUPPORTED_TEXT = " or ".join(f.description for f in FAMILIES)
EXAMPLE = FAMILIES[0].example


class ModelIndexError(DreamboothError):
    """The model cannot be used; `kind` is "config" (wrong model, exit 2) or "network" (cannot
    read, exit 1)."""

    def __init__(self, message: str, kind: str = "config") -> None:
        super().__init__(message, kind=kind, exit_code=exit_code_for(kind))


def family_name(class_name: str) -> str:
    for prefix, name in _FAMILIES:
        if class_name.startswith(prefix):
            return f"{name} ({class_name})"
    return class_name


def unsupported_reason(index: dict[str, Any]) -> str | None:
    """Why a pipeline with this model_index.json cannot be trained here; None if it can."""
    family = family_for(index)
    if family is None:
        cls = str(index.get("_class_name") or "")
        return (
            f"is a {family_name(cls) if cls else 'pipeline of unknown class'}; this engine trains "
            f"{SUPPORTED_TEXT} only: pick such a model, e.g. '{EXAMPLE}'"
        )
    return family.component_problem(index)


def read_model_index(
    model: str, revision: str | None = None, *, cache_only: bool = False
) -> dict[str, Any] | None:
    """The model's model_index.json: from a local folder, or that one file from the Hub (the
    cache when offline, or always with `cache_only`). None for a builtin model before it is
    built. Raises ModelIndexError with one line when it cannot be read."""
    kind = kind_of(model)
    if kind == "builtin":
        path = builtin_model_path(model) / "model_index.json"
        return _read_json(path) if path.is_file() else None
    if kind == "local":
        path = Path(model).expanduser() / "model_index.json"
        if not path.is_file():
            raise ModelIndexError(
                f"{model!r} is not a diffusers pipeline folder (no model_index.json); give the "
                "folder that holds model_index.json, or a hub id"
            )
        return _read_json(path)
    return _read_json(Path(_download_index(model, revision, cache_only)))


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelIndexError(f"{path}: unreadable model_index.json ({exc})") from None
    if not isinstance(data, dict):
        raise ModelIndexError(f"{path}: model_index.json is not a JSON object")
    return data


def _download_index(repo_id: str, revision: str | None, cache_only: bool = False) -> str:
    """Only model_index.json (a few hundred bytes), through the hub cache."""
    from huggingface_hub import errors, hf_hub_download

    # huggingface_hub 1.x names a missing remote file RemoteEntryNotFoundError, 0.x only
    # EntryNotFoundError (whose subclass LocalEntryNotFoundError means "offline, not cached").
    missing = tuple(
        getattr(errors, n)
        for n in ("RemoteEntryNotFoundError", "EntryNotFoundError")
        if hasattr(errors, n)
    )
    try:
        if cache_only:
            return hf_hub_download(
                repo_id, "model_index.json", revision=revision, local_files_only=True
            )
        return hf_hub_download(repo_id, "model_index.json", revision=revision)
    except errors.LocalEntryNotFoundError:
        raise ModelIndexError(
            f"cannot read model_index.json of '{repo_id}': offline (HF_HUB_OFFLINE or no "
            "network) and not in the hub cache; connect once, or use a local diffusers folder",
            kind="network",
        ) from None
    except errors.GatedRepoError:
        raise ModelIndexError(
            f"'{repo_id}' is gated: accept its terms on huggingface.co and set HF_TOKEN "
            "(or run `hf auth login`)"
        ) from None
    except errors.RepositoryNotFoundError:
        raise ModelIndexError(
            f"'{repo_id}' was not found on the Hugging Face Hub (private? set HF_TOKEN); give "
            f"a hub id such as '{EXAMPLE}' or a local diffusers folder"
        ) from None
    except errors.RevisionNotFoundError:
        raise ModelIndexError(
            f"'{repo_id}' has no revision {revision!r}; fix train.revision or set it to null"
        ) from None
    except missing:
        raise ModelIndexError(
            f"'{repo_id}' has no model_index.json: it is not a diffusers pipeline; give a "
            f"diffusers model such as '{EXAMPLE}'"
        ) from None
    except OSError as exc:  # requests' connection errors are OSErrors
        raise ModelIndexError(
            f"cannot read model_index.json of '{repo_id}' from the Hub ({exc.__class__.__name__}); "
            "check the network, or use a local diffusers folder",
            kind="network",
        ) from None


def check_model(model: str, revision: str | None = None) -> None:
    """Raise ModelIndexError (one line, without the key) unless the model can be trained here."""
    index = read_model_index(model, revision)
    if index is None:
        return
    reason = unsupported_reason(index)
    if reason:
        raise ModelIndexError(f"{model!r} {reason}")


def bucket_step_of(model: str, revision: str | None = None) -> int:
    """The aspect-ratio bucket step of a model (engine.buckets.step_for its VAE's blocks), from
    vae/config.json of a local or built builtin model or a hub id's cached file (no network);
    64 (SD and SDXL) when that cannot be read."""
    kind = kind_of(model)
    path: Path | None = None
    if kind == "builtin":
        path = builtin_model_path(model) / "vae" / "config.json"
    elif kind == "local":
        path = Path(model).expanduser() / "vae" / "config.json"
    else:
        try:
            from huggingface_hub import try_to_load_from_cache

            found = try_to_load_from_cache(model, "vae/config.json", revision=revision)
            path = Path(found) if isinstance(found, str) else None
        except (ImportError, ValueError):
            path = None
    try:
        blocks = len(json.loads(path.read_text(encoding="utf-8"))["block_out_channels"])
    except (AttributeError, OSError, ValueError, KeyError, TypeError):
        return 64
    return step_for(blocks)
