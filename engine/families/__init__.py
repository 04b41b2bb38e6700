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

__all__ = [
    "FAMILIES",
    "SD",
    "Components",
    "Conditioning",
    "ModelFamily",
    "ModelLoadError",
    "PromptEmbeds",
    "SampleGeometry",
    "family_for",
    "family_named",
    "family_of",
]

#: Every family the engine trains, in the order they are tried.
FAMILIES: tuple[ModelFamily, ...] = (SD,)


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

    for family in FAMILIES:  # a builtin tiny model: its builder's family, built or not
        if model in family.builtin_models:
            return family
    index = read_model_index(model, revision)
    if index is None:  # a builtin not built yet that no family names
        raise ModelIndexError(f"{model!r} is a builtin model of no registered family")
    family = family_for(index)
    if family is None:
        raise ModelIndexError(f"{model!r} {unsupported_reason(index)}")
    return family
