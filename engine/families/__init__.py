"""Model families behind one interface (base.ModelFamily) and the registry that finds a model's.

`family_for(index)` reads a model_index.json; `family_of(model)` a model (hub id, local folder or
builtin:tiny). A new family is one module here, added to FAMILIES. Torch-free at import.
"""

from __future__ import annotations

from typing import Any

from engine.families.base import (
    Components,
    Conditioning,
    ModelFamily,
    ModelLoadError,
    PromptEmbeds,
    SampleGeometry,
)
from engine.families.sd import SD
from engine.families.sdxl import SDXL

__all__ = [
    "DEFAULT_FAMILY",
    "FAMILIES",
    "SD",
    "SDXL",
    "Components",
    "Conditioning",
    "ModelFamily",
    "ModelLoadError",
    "PromptEmbeds",
    "SampleGeometry",
    "family_for",
    "family_named",
    "family_of",
    "known_family",
    "loading_family",
]

#: Every family the engine trains, in the order they are tried.
FAMILIES: tuple[ModelFamily, ...] = (SD, SDXL)
#: The family a model whose model_index.json cannot be read is loaded as (the loader then says
#: why it cannot load it).
DEFAULT_FAMILY = SD


def family_for(index: dict[str, Any]) -> ModelFamily | None:
    """The family whose pipeline model_index.json names, or None (a family not trained here)."""
    return next((f for f in FAMILIES if f.matches(index)), None)


def family_named(name: str) -> ModelFamily:
    """The family with this `name` ("sd", ...); KeyError for an unknown one."""
    for family in FAMILIES:
        if family.name == name:
            return family
    raise KeyError(name)


def family_of(model: str, revision: str | None = None) -> ModelFamily:
    """The family of a model (hub id, local folder or builtin:tiny), from its model_index.json
    alone. Raises engine.model_family.ModelIndexError (one line) when the index cannot be read
    or names a pipeline no family trains."""
    from engine.model_family import ModelIndexError, read_model_index, unsupported_reason

    family = _builtin_family(model)
    if family is not None:
        return family
    index = read_model_index(model, revision)
    if index is None:  # a builtin not built yet that no family names
        raise ModelIndexError(f"{model!r} is a builtin model of no registered family")
    family = family_for(index)
    if family is None:
        raise ModelIndexError(f"{model!r} {unsupported_reason(index)}")
    return family


def known_family(model: str, revision: str | None = None) -> ModelFamily | None:
    """The model's family where it can be told without the network (a builtin, a local folder,
    a hub id whose model_index.json is in the local cache), else None. For the app's summary."""
    from engine.model_family import ModelIndexError, read_model_index

    family = _builtin_family(model)
    if family is not None:
        return family
    try:
        index = read_model_index(model, revision, cache_only=True)
    except (ModelIndexError, ValueError, OSError):  # ValueError: an invalid repo id
        return None
    return family_for(index) if index is not None else None


def _builtin_family(model: str) -> ModelFamily | None:
    """A builtin tiny model's family (its builder's), built or not."""
    return next((f for f in FAMILIES if model in f.builtin_models), None)


def loading_family(
    model: str, revision: str | None = None, *, cache_only: bool = False
) -> ModelFamily:
    """The family to load or describe `model` with (generate, class images, the hub card):
    its model_index.json's, else DEFAULT_FAMILY where the file cannot be read or names no
    family here, so the loader reports the problem as it always has. `cache_only`: never ask
    the Hub (a hub id's index from the local cache only)."""
    from engine.model_family import ModelIndexError, read_model_index

    family = _builtin_family(model)
    if family is not None:
        return family
    try:
        index = read_model_index(model, revision, cache_only=cache_only)
    except (ModelIndexError, ValueError):  # ValueError: huggingface_hub's invalid repo id
        return DEFAULT_FAMILY
    return (family_for(index) if index is not None else None) or DEFAULT_FAMILY
