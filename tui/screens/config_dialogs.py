"""The Config screen's dialogs: find a field by name, the file name to save as, and carrying a
changed instance prompt over to the sample prompts."""

from __future__ import annotations

import difflib

from textual.suggester import SuggestFromList

from engine.config import FIELD_GROUPS
from tui.state import DEFAULT_CONFIG
from tui.widgets.modals import Choice, ChoiceModal, PromptModal

__all__ = ["find_field_modal", "full_field_name", "prompt_sync_modal", "save_as_modal"]


def _field_names() -> tuple[list[str], dict[str, str]]:
    names = [f"{section}.{key}" for fields in FIELD_GROUPS.values() for section, key in fields]
    return names, {name.split(".", 1)[1]: name for name in names}


def full_field_name(value: str) -> str | None:
    """ "section.key" for a field typed as "section.key" or as its key alone; None if none."""
    names, by_key = _field_names()
    return value if value in names else by_key.get(value)


def not_a_field(value: str) -> str:
    """The error for a name that is no field: with the fields it is part of, or the closest."""
    _, by_key = _field_names()
    key = value.rpartition(".")[2]
    close = [k for k in by_key if key and key in k][:3]
    close = close or difflib.get_close_matches(key, list(by_key), n=3)
    if not close:
        return f"no field {value!r}"
    return f"no field {value!r}; did you mean {' or '.join(repr(k) for k in close)}?"


def find_field_modal() -> PromptModal:
    """Asks a field's name, suggesting the known ones."""
    names, by_key = _field_names()
    return PromptModal(
        "Find a field",
        "Field name (e.g. learning_rate):",
        placeholder="key or section.key",
        validate=lambda v: None if full_field_name(v) else not_a_field(v),
        suggester=SuggestFromList([*by_key, *names], case_sensitive=False),
        submit_label="Go",
    )


def save_as_modal() -> PromptModal:
    """Asks the .yaml file name for a config not saved yet."""
    return PromptModal(
        "Save the config",
        "File name:",
        value=DEFAULT_CONFIG,
        validate=lambda v: None if v.endswith((".yaml", ".yml")) else "a .yaml file name",
        submit_label="Save",
    )


def prompt_sync_modal(old: str | None, new: str, new_prompts: list[str]) -> ChoiceModal:
    """Offers the sample prompts rewritten for the new instance prompt ("update" or "keep")."""
    listing = "\n".join(f"  {p}" for p in new_prompts)
    message = (
        f"The sample prompts (evaluation.prompts) still use {old!r}, not "
        f"{new!r}: the samples would not show the new concept. "
        f"Update them to:\n{listing}"
    )
    return ChoiceModal(
        "Sample prompts",
        message,
        [Choice("update", "Update them"), Choice("keep", "Keep them")],
        cancel="keep",
    )
