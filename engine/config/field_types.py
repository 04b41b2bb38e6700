"""The schema's field types: each reads a YAML value and raises ValueError with the exact
message the user reads."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BeforeValidator

from engine.config.errors import show_value


def _as_int(v: Any) -> int:
    if isinstance(v, bool):
        raise ValueError(f"expected an integer, got {show_value(v)}")
    if isinstance(v, int):
        return int(v)
    if isinstance(v, float) and math.isfinite(v) and v == int(v):
        return int(v)
    if isinstance(v, str) and re.fullmatch(r"\s*[-+]?\d+\s*", v):
        return int(v)
    raise ValueError(f"expected an integer, got {show_value(v)}")


def _as_float(v: Any) -> float:
    if isinstance(v, bool):
        raise ValueError(f"expected a number, got {show_value(v)}")
    if isinstance(v, (int, float)):
        f = float(v)
    elif isinstance(v, str):
        try:
            f = float(v.strip())
        except ValueError:
            raise ValueError(f"expected a number, got {show_value(v)}") from None
    else:
        raise ValueError(f"expected a number, got {show_value(v)}")
    if not math.isfinite(f):
        raise ValueError(f"expected a finite number, got {show_value(v)}")
    return f


_TRUE = {"true", "yes", "on"}
_FALSE = {"false", "no", "off"}


def as_bool(v: Any) -> bool:
    if isinstance(v, bool):
        return v
    if isinstance(v, str) and v.strip().lower() in _TRUE | _FALSE:
        return v.strip().lower() in _TRUE
    raise ValueError(f"expected true or false, got {show_value(v)}")


def _as_str(v: Any) -> str:
    if isinstance(v, str):
        return str(v)
    if isinstance(v, int) and not isinstance(v, bool):
        return str(v)
    raise ValueError(f"expected text, got {show_value(v)}")


def _optional(conv: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def inner(v: Any) -> Any:
        return None if v is None else conv(v)

    return inner


def _choice(choices: tuple[str, ...], *, false_means: str | None = None) -> Callable[[Any], str]:
    def inner(v: Any) -> str:
        if v is False and false_means is not None:
            return false_means  # YAML 1.1 reads an unquoted `no` as false
        if isinstance(v, str) and v.strip().lower() in choices:
            return v.strip().lower()
        raise ValueError(f"must be one of {', '.join(choices)}; got {show_value(v)}")

    return inner


def _auto_switch(v: Any) -> str:
    """auto, on or off; YAML's true/false (and yes/no) read as on/off."""
    if isinstance(v, bool):
        return "on" if v else "off"
    if isinstance(v, str) and v.strip().lower() in _TRUE | _FALSE:
        return "on" if v.strip().lower() in _TRUE else "off"
    if isinstance(v, str) and v.strip().lower() == "auto":
        return "auto"
    raise ValueError(f"must be one of auto, on, off (or true/false); got {show_value(v)}")


def _gt(bound: float) -> Callable[[Any], Any]:
    def inner(v: Any) -> Any:
        if v is not None and not v > bound:
            raise ValueError(f"must be > {bound:g}, got {show_value(v)}")
        return v

    return inner


def _ge(bound: float) -> Callable[[Any], Any]:
    def inner(v: Any) -> Any:
        if v is not None and not v >= bound:
            raise ValueError(f"must be >= {bound:g}, got {show_value(v)}")
        return v

    return inner


def _lt(bound: float) -> Callable[[Any], Any]:
    def inner(v: Any) -> Any:
        if v is not None and not v < bound:
            raise ValueError(f"must be < {bound:g}, got {show_value(v)}")
        return v

    return inner


def _multiple_of_8(v: int | None) -> int | None:
    if v is not None and (v < 8 or v % 8):
        lo, hi = max(8, v // 8 * 8), max(8, -(-v // 8) * 8)
        hint = f"e.g. {lo}" if lo == hi else f"e.g. {lo} or {hi}"
        raise ValueError(f"must be a positive multiple of 8, got {show_value(v)}; {hint}")
    return v


def _prompt_list(v: Any) -> list[str]:
    if isinstance(v, str):
        v = [v]
    if not isinstance(v, (list, tuple)):
        raise ValueError(f"expected a list of prompts (or one prompt), got {show_value(v)}")
    out = []
    for i, item in enumerate(v):
        if not isinstance(item, str):
            raise ValueError(f"item {i + 1}: expected a prompt (text), got {show_value(item)}")
        out.append(str(item))
    if not out:
        raise ValueError("needs at least one prompt; e.g. ['a photo of sks dog on the beach']")
    return out


def _nonempty(v: str) -> str:
    if not v.strip():
        raise ValueError("must not be empty")
    return v


def _as_opt_str(v: Any) -> str | None:
    if v is None or (isinstance(v, str) and not v.strip()):
        return None  # "" clears an optional text
    return _as_str(v)


Str = Annotated[str, BeforeValidator(_as_str)]  # may be empty
Text = Annotated[str, BeforeValidator(_as_str), AfterValidator(_nonempty)]
OptStr = Annotated[str | None, BeforeValidator(_as_opt_str)]
Bool = Annotated[bool, BeforeValidator(as_bool)]
AutoSwitch = Annotated[Literal["auto", "on", "off"], BeforeValidator(_auto_switch)]
Int = Annotated[int, BeforeValidator(_as_int)]
PosInt = Annotated[int, BeforeValidator(_as_int), AfterValidator(_ge(1))]
NonNegInt = Annotated[int, BeforeValidator(_as_int), AfterValidator(_ge(0))]
OptPosInt = Annotated[int | None, BeforeValidator(_optional(_as_int)), AfterValidator(_ge(1))]
PosFloat = Annotated[float, BeforeValidator(_as_float), AfterValidator(_gt(0))]
NonNegFloat = Annotated[float, BeforeValidator(_as_float), AfterValidator(_ge(0))]
#: A probability that must leave something: 0 <= p < 1 (dropouts).
Dropout = Annotated[
    float, BeforeValidator(_as_float), AfterValidator(_ge(0)), AfterValidator(_lt(1))
]
OptPosFloat = Annotated[float | None, BeforeValidator(_optional(_as_float)), AfterValidator(_gt(0))]
#: A moving-average coefficient: 0 <= x < 1 (Adam's betas).
Beta = Annotated[float, BeforeValidator(_as_float), AfterValidator(_ge(0)), AfterValidator(_lt(1))]
#: A decay that does something: 0 < x < 1, or null for off (the EMA's).
OptDecay = Annotated[
    float | None,
    BeforeValidator(_optional(_as_float)),
    AfterValidator(_gt(0)),
    AfterValidator(_lt(1)),
]
Resolution = Annotated[int, BeforeValidator(_as_int), AfterValidator(_multiple_of_8)]
OptSize = Annotated[int | None, BeforeValidator(_optional(_as_int)), AfterValidator(_multiple_of_8)]


def enum_of(choices: tuple[str, ...], **kw: Any) -> Any:
    return Annotated[Literal[choices], BeforeValidator(_choice(choices, **kw))]  # type: ignore[valid-type]


Prompts = Annotated[list[str], BeforeValidator(_prompt_list)]


def choice_list(choices: tuple[str, ...]) -> Any:
    """A list of distinct choices (one choice alone, or null for none, also read), in the order
    given: e.g. `train.export: [kohya, single-file]`."""

    def inner(v: Any) -> list[str]:
        if v is None:
            return []
        items = [v] if isinstance(v, str) else v
        if not isinstance(items, (list, tuple)):
            raise ValueError(f"expected a list of {', '.join(choices)}, got {show_value(v)}")
        out: list[str] = []
        for item in items:
            name = str(item).strip().lower() if isinstance(item, str) else item
            if name not in choices:
                raise ValueError(f"{show_value(item)} is not one of {', '.join(choices)}")
            if name not in out:
                out.append(name)
        return out

    return Annotated[list[str], BeforeValidator(inner)]
