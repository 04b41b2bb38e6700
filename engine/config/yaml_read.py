"""Reading a config's YAML: ruamel's round trip (YAML 1.2, comments kept), bounded against
hostile files, and the plain values and line numbers the rest of the package needs."""

from __future__ import annotations

import re
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from engine.config.errors import ConfigError


def round_trip_yaml() -> YAML:
    y = YAML()  # round trip, YAML 1.2: `no` is the string "no", 5e-6 is a float
    y.preserve_quotes = True
    y.allow_duplicate_keys = False
    y.width = 4096
    y.representer.add_representer(
        type(None), lambda r, d: r.represent_scalar("tag:yaml.org,2002:null", "null")
    )
    y.representer.add_representer(
        float, lambda r, d: r.represent_scalar("tag:yaml.org,2002:float", _float_text(d))
    )
    return y


def _float_text(value: float) -> str:
    """5e-06 -> '5.0e-6', 0.5 -> '0.5', 2.0 -> '2.0': floats that YAML 1.1 readers read too."""
    text = repr(float(value))
    if "e" in text:
        mantissa, exponent = text.split("e")
        if "." not in mantissa:
            mantissa += ".0"
        sign = "-" if exponent.startswith("-") else "+"
        text = f"{mantissa}e{sign}{int(exponent.lstrip('+-'))}"
    elif "." not in text:
        text += ".0"
    return text


def _yaml_error(exc: YAMLError, source: str) -> ConfigError:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    line = mark.line + 1 if mark is not None else None
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    m = re.search(r'found duplicate key "(.*?)"', str(problem))
    if m:
        return ConfigError(f"duplicate key '{m.group(1)}'", file=source, line=line)
    return ConfigError(f"YAML syntax error: {problem}", file=source, line=line)


# A config is ~60 values. These bounds keep a hostile or broken file (deep nesting, an alias
# "billion laughs", a self-referencing alias) to one error line instead of a RecursionError or
# gigabytes of memory.
MAX_DEPTH = 32
MAX_VALUES = 20_000
MAX_FILE_BYTES = 1 << 20


def _flow_depth(text: str) -> int:
    """The deepest ``[``/``{`` nesting in ``text``, brackets in quotes and comments included (an
    over-estimate is fine: it only has to bound what the YAML scanner, slow on deep flow
    nesting, is given)."""
    depth = deepest = 0
    for ch in text:
        if ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}" and depth:
            depth -= 1
    return deepest


def _too_deep(source: str, why: str = "") -> ConfigError:
    return ConfigError(
        f"nested too deeply{why}; a config is at most {MAX_DEPTH} levels deep", file=source
    )


def load_yaml(text: str, source: str) -> Any:
    if _flow_depth(text) > MAX_DEPTH:
        raise _too_deep(source)
    try:
        tree = round_trip_yaml().load(text)
    except MarkedYAMLError as exc:
        raise _yaml_error(exc, source) from None
    except YAMLError as exc:  # unmarked, rare
        raise ConfigError(f"YAML error: {exc}", file=source) from None
    except RecursionError:
        raise _too_deep(source) from None
    except ValueError as exc:  # e.g. an integer of more than 4300 digits
        raise ConfigError(
            f"a value cannot be read: {' '.join(str(exc).split())}", file=source
        ) from None
    _check_size(tree, source)
    return tree


def _check_size(tree: Any, source: str) -> None:
    """Refuse a tree deeper than MAX_DEPTH or with more than MAX_VALUES values once its aliases
    are expanded (walked without recursion, stopping at the first bound crossed)."""
    stack: list[tuple[Any, int]] = [(tree, 0)]
    count = 0
    while stack:
        node, depth = stack.pop()
        count += 1
        if count > MAX_VALUES:
            raise ConfigError(
                f"too large: more than {MAX_VALUES} values (counting what its aliases repeat)",
                file=source,
            )
        if depth > MAX_DEPTH:
            raise _too_deep(source, " (or an alias contains itself)")
        if isinstance(node, dict):
            stack.extend((v, depth + 1) for v in node.values())
            stack.extend((k, depth + 1) for k in node if isinstance(k, (tuple, list)))
        elif isinstance(node, (list, tuple)):
            stack.extend((v, depth + 1) for v in node)


def plain(node: Any) -> Any:
    """ruamel's round-trip types -> plain Python (dict, list, str, int, float, bool, None)."""
    if isinstance(node, dict):
        return {str(k): plain(v) for k, v in node.items()}
    if isinstance(node, (list, tuple)):
        return [plain(v) for v in node]
    if isinstance(node, bool):
        return bool(node)
    if isinstance(node, int):
        return int(node)
    if isinstance(node, float):
        return float(node)
    if isinstance(node, str):
        return str(node)
    return node


def line_of(tree: Any, loc: tuple) -> int | None:
    """1-based line of the deepest part of ``loc`` found in the round-trip tree."""
    line = None
    node = tree
    for part in loc:
        try:
            if isinstance(node, CommentedMap) and part in node:
                line = node.lc.key(part)[0] + 1
                node = node[part]
            elif isinstance(node, CommentedSeq) and isinstance(part, int) and part < len(node):
                line = node.lc.item(part)[0] + 1
                node = node[part]
            else:
                return line
        except (AttributeError, KeyError, TypeError, IndexError):
            return line
    return line
