"""Writing a config as YAML: the user's file as a template, so its comments, key order and
formatting survive a save; atomic writes."""

from __future__ import annotations

import copy
import io
import os
import re
import tempfile
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import YAMLError
from ruamel.yaml.scalarstring import DoubleQuotedScalarString, SingleQuotedScalarString

from engine.config.schema import SECTIONS, Config, TrainConfig, config_to_dict
from engine.config.tutorial import is_tutorial_format
from engine.config.yaml_read import plain, round_trip_yaml
from engine.file_modes import usual_modes

_YAML11_WORDS = {"yes", "no", "on", "off", "y", "n", "true", "false", "null", "~", ""}


def _yaml_value(value: Any, old: Any = None) -> Any:
    """A plain value, styled for ruamel: quote strings a YAML 1.1 reader would misread."""
    if isinstance(value, str):
        if isinstance(old, SingleQuotedScalarString):
            return SingleQuotedScalarString(value)
        if isinstance(old, DoubleQuotedScalarString) or value.strip().lower() in _YAML11_WORDS:
            return DoubleQuotedScalarString(value)
        if _needs_quotes(value):
            return DoubleQuotedScalarString(value)
        return value
    if isinstance(value, list):
        seq = CommentedSeq(_yaml_value(v) for v in value)
        if all(isinstance(v, str) and len(v) < 60 for v in value):
            seq.fa.set_flow_style()
        return seq
    return value


def _needs_quotes(value: str) -> bool:
    """Strings that would load back as something else (numbers, dates...) get quotes."""
    try:
        loaded = YAML(typ="safe", pure=True).load(value)
    except YAMLError:
        return True
    return loaded != value


def _same(old: Any, new: Any) -> bool:
    """Whether a template value already equals the new value (7 and 7.0 are the same)."""
    p = plain(old)
    numbers = (int, float)
    if (
        isinstance(p, numbers)
        and isinstance(new, numbers)
        and not isinstance(p, bool)
        and not isinstance(new, bool)
    ):
        return p == new
    return type(p) is type(new) and p == new


def _set_value(section: CommentedMap, key: str, value: Any) -> None:
    old = section[key]
    if _same(old, value):
        return  # untouched: keeps its formatting (5.0e-6 stays 5.0e-6)
    if isinstance(old, CommentedSeq) and isinstance(value, list):
        old[:] = [_yaml_value(v) for v in value]  # keeps flow/block style and comments
        return
    section[key] = _yaml_value(value, old)


def _insert_after(section: CommentedMap, after: str | None, key: str, value: Any) -> None:
    """Insert ``key`` after ``after`` (None: first), moving comment lines that followed ``after``."""
    keys = list(section.keys())
    pos = keys.index(after) + 1 if after in keys else 0
    section.insert(pos, key, _yaml_value(value))
    if after not in keys:
        return
    slot = section.ca.items.get(after)
    if not slot or len(slot) < 3 or slot[2] is None:
        return
    token = slot[2]
    text = token.value
    first, sep, rest = text.partition("\n")
    if not sep or not rest:
        return  # only an end-of-line comment: it stays with `after`
    # `first` is after's end-of-line comment; `rest` is full-line comments that belonged below it
    if first.strip():
        token.value = first + "\n"
    else:
        slot[2] = None
    moved = copy.copy(token)
    moved.value = "\n" + rest
    new_slot = section.ca.items.setdefault(key, [None, None, None, None])
    new_slot[2] = moved


def _detect_indent(text: str) -> tuple[int, int, int]:
    """The (mapping, sequence, offset) indentation ruamel should use to match the template."""
    mapping, offset = 2, 2
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    indents = [len(ln) - len(ln.lstrip(" ")) for ln in lines if re.match(r"^ +[^\s-][^:]*:", ln)]
    if indents:
        mapping = min(i for i in indents if i > 0)
    for prev, ln in zip(lines, lines[1:], strict=False):
        m = re.match(r"^( *)- ", ln)
        if m and prev.rstrip().endswith(":"):
            offset = max(0, len(m.group(1)) - (len(prev) - len(prev.lstrip(" "))))
            break
    return mapping, offset + 2, offset


_HEADER = (
    "dreambooth-tui config: train (required), evaluation and hub.\n"
    "Keys as in diffusers' DreamBooth script; see sample_configs/sd15-full.yaml for comments."
)
_CONVERTED = (
    "Converted from the tutorial format (train_params/eval_params) to dreambooth-tui's\n"
    "format; the original file's comments were not carried over."
)


def _dump_plain(data: dict, header: str) -> str:
    tree = CommentedMap()
    for section, values in data.items():
        sec = CommentedMap()
        for k, v in values.items():
            sec[k] = _yaml_value(v)
        tree[section] = sec
    tree.yaml_set_start_comment(header)
    y = round_trip_yaml()
    y.indent(mapping=2, sequence=4, offset=2)
    buf = io.StringIO()
    y.dump(tree, buf)
    return buf.getvalue()


def dump_config(cfg: Config, template_text: str | None = None) -> str:
    """The config as YAML text.

    With ``template_text`` (the user's file, this app's format) comments, key order and formatting
    are kept: values of the keys present are replaced, absent keys whose value differs from the
    default are added to their section, nothing else changes. A tutorial-format template is
    converted to this app's format (with a comment at the top saying so). Without a template (or
    with one that does not parse): every key, in DESIGN order.
    """
    data = config_to_dict(cfg)
    tree = None
    if template_text is not None and template_text.strip():
        try:
            tree = round_trip_yaml().load(template_text)
        except YAMLError:
            tree = None
    if tree is not None and is_tutorial_format(tree):
        return _dump_plain(data, _CONVERTED)
    if not isinstance(tree, CommentedMap):
        return _dump_plain(data, _HEADER)

    indent = _detect_indent(template_text or "")
    defaults = {name: config_to_dict(_default_config_for(cfg))[name] for name in SECTIONS}
    for name in SECTIONS:
        values = data[name]
        section = tree.get(name)
        if not isinstance(section, CommentedMap):
            if name == "train":
                changed = values  # an unusable train section is replaced whole
            else:
                changed = {k: v for k, v in values.items() if v != defaults[name][k]}
            if not changed:
                continue
            new = CommentedMap()
            for k, v in changed.items():
                new[k] = _yaml_value(v)
            if name in tree:
                tree[name] = new
            else:
                previous = [s for s in SECTIONS[: SECTIONS.index(name)] if s in tree]
                _insert_after(tree, previous[-1] if previous else None, name, None)
                tree[name] = new
            continue
        order = list(values)
        for i, key in enumerate(order):
            if key in section:
                _set_value(section, key, values[key])
            elif values[key] != defaults[name][key]:
                before = [k for k in order[:i] if k in section]
                after = before[-1] if before else None
                if after is None and len(section):
                    # no earlier key present: put it first
                    section.insert(0, key, _yaml_value(values[key]))
                else:
                    _insert_after(section, after, key, values[key])
    y = round_trip_yaml()
    y.indent(mapping=indent[0], sequence=indent[1], offset=indent[2])
    buf = io.StringIO()
    y.dump(tree, buf)
    return buf.getvalue()


def _default_config_for(cfg: Config) -> Config:
    """A config with cfg's required values and every other key at its default."""
    t = cfg.train
    return Config(
        train=TrainConfig(
            model=t.model, instance_data=t.instance_data, instance_prompt=t.instance_prompt
        )
    )


def save_config(cfg: Config, path: str | Path, template_text: str | None = None) -> None:
    """Write the config to ``path`` atomically (temp file + os.replace).

    If ``template_text`` is None and ``path`` exists, the existing file is the template, so its
    comments and layout survive.
    """
    path = Path(path).expanduser()
    if template_text is None and path.is_file():
        try:
            template_text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            template_text = None
    text = dump_config(cfg, template_text)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        try:  # the file's own mode; a new file the umask's (mkstemp makes it 0600)
            if path.exists():
                os.chmod(tmp, path.stat().st_mode & 0o777)
            else:
                usual_modes(Path(tmp))
        except OSError:
            pass
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
