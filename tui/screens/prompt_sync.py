"""Sample prompts that still use an old instance prompt (or its token) after it changed.

`train.instance_prompt` carries the concept's token ("a photo of sks dog"); the validation
prompts in `evaluation.prompts` should use the same token, or the samples show the base model's
idea of the old word. When the instance prompt changes, the Config screen asks whether to carry
the change over (`updated_prompts`); nothing here touches the app.
"""

from __future__ import annotations

import re


def _changed_words(old: str, new: str) -> tuple[str, str] | None:
    """The one word that changed between two prompts of the same length ("sks" -> "zwx")."""
    a, b = old.split(), new.split()
    if len(a) != len(b):
        return None
    pairs = [(x, y) for x, y in zip(a, b, strict=True) if x != y]
    return pairs[0] if len(pairs) == 1 else None


def updated_prompts(old: str, new: str, prompts: list[str]) -> list[str] | None:
    """`prompts` with the old instance prompt (or its one changed word) replaced by the new;
    None when none of them uses the old one (nothing to offer)."""
    old, new = old.strip(), new.strip()
    if not old or not new or old == new:
        return None
    word = _changed_words(old, new)
    result = []
    for prompt in prompts:
        if old in prompt and new not in prompt:
            prompt = prompt.replace(old, new)
        elif word is not None:
            prompt = re.sub(rf"(?<!\S){re.escape(word[0])}(?!\S)", word[1], prompt)
        result.append(prompt)
    return result if result != prompts else None
