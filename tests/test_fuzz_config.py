"""Fuzzed config text, both formats: every case loads, or is refused with one error line.

In process (hypothesis, derandomized: the same cases on every run) for breadth, then a few
hostile files through `dreambooth-tui check` as a real process for the exit code, the single
line and the memory the process took (docs/reliability.md, "Config text").
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from engine.config import (
    ConfigError,
    EvaluationConfig,
    HubConfig,
    TrainConfig,
    dump_config,
    parse_config_text,
)
from engine.config.tutorial import _TUTORIAL_EVAL, _TUTORIAL_TRAIN

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = [
    (ROOT / "sample_configs" / name).read_text(encoding="utf-8")
    for name in ("demo.yaml", "tutorial-format.yaml", "sd15-lora.yaml")
]
FUZZ = settings(
    max_examples=120,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(10**400), max_value=10**400),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=40),
    st.sampled_from(
        ["no", "yes", "~", "1e9999", ".nan", "-.inf", "0x1F", "0o17", "2001-12-14", "builtin:tiny"]
        + ["./x", "/", "", " ", "a photo of sks dog", "\x00", "\ud7ff", "👍" * 50]
    ),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
KEYS = {
    "train": list(TrainConfig.model_fields),
    "evaluation": list(EvaluationConfig.model_fields),
    "hub": list(HubConfig.model_fields),
    "train_params": list(_TUTORIAL_TRAIN),
    "eval_params": list(_TUTORIAL_EVAL),
}


@st.composite
def trees(draw) -> dict:
    """A config-shaped mapping: real sections and keys mostly, random ones sometimes."""
    tree: dict = {}
    sections = draw(st.lists(st.sampled_from([*KEYS, "x"]), min_size=1, max_size=3, unique=True))
    for section in sections:
        known = KEYS.get(section, ["y"])
        keys = draw(st.lists(st.sampled_from(known) | st.text(max_size=12), max_size=8))
        tree[section] = {k: draw(VALUES) for k in keys}
    return tree


def yaml_text(tree: dict, flow: bool) -> str:
    y = YAML(typ="safe", pure=True)
    y.default_flow_style = flow
    out = io.StringIO()
    y.dump(tree, out)
    return out.getvalue()


@st.composite
def config_texts(draw) -> str:
    kind = draw(st.sampled_from(["block", "flow", "json", "mutated"]))
    if kind == "mutated":  # a sample config with characters deleted, inserted or lines doubled
        text = draw(st.sampled_from(SAMPLES))
        for _ in range(draw(st.integers(1, 6))):
            at = draw(st.integers(0, len(text)))
            op = draw(st.sampled_from(["delete", "insert", "dup_line"]))
            if op == "delete":
                text = text[:at] + text[at + draw(st.integers(1, 20)) :]
            elif op == "insert":
                text = text[:at] + draw(st.text(min_size=1, max_size=10)) + text[at:]
            else:
                lines = text.splitlines(keepends=True) or [""]
                i = at % len(lines)
                text = "".join(lines[: i + 1] + [lines[i]] + lines[i + 1 :])
        return text
    tree = draw(trees())
    if kind == "json":
        return json.dumps(tree, ensure_ascii=draw(st.booleans()))
    return yaml_text(tree, kind == "flow")


def assert_loads_or_one_line(text: str) -> None:
    try:
        cfg, warnings = parse_config_text(text, "fuzz.yaml")
    except ConfigError as exc:
        message = str(exc)
        assert message.startswith("fuzz.yaml: ")
        assert len(message.splitlines()) == 1 and "\n" not in message, message
        return
    # accepted: it must save and load back to the same config
    again, _ = parse_config_text(dump_config(cfg, text), "saved.yaml")
    assert again == cfg
    assert all(len(w.splitlines()) == 1 for w in warnings)


@pytest.mark.slow
@FUZZ
@given(config_texts())
def test_fuzzed_config_text_loads_or_fails_in_one_line(text):
    assert_loads_or_one_line(text)


def _bomb(levels: int = 9) -> str:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    for i in range(1, levels):
        refs = ", ".join([f"*a{i - 1}"] * 9)
        lines.append(f"a{i}: &a{i} [{refs}]")
    return "train:\n  model: ./m\n  instance_data: ./d\n  instance_prompt: p\n" + "\n".join(lines)


HOSTILE = {
    "flow-nesting": "train: " + "[" * 5000 + "]" * 5000,
    "block-nesting": "train:\n" + "".join("  " * i + f"k{i}:\n" for i in range(1, 400)),
    "tutorial-nesting": "train_params: " + "{a: " * 3000 + "1" + "}" * 3000,
    "alias-bomb": _bomb(),
    "alias-loop": "train: &t\n  model: *t\n",
    "huge-integer": "train:\n  max_train_steps: " + "9" * 5000 + "\n",
    "newline-in-key": 'train:\n  "bad\\nkey": 1\n',
    "duplicate-key": "train:\n  model: ./a\n  model: ./b\n",
    "python-tag": "train: !!python/object:os.system ls\n",
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_config_text_is_one_line_quickly(name):
    import time

    start = time.monotonic()
    with pytest.raises(ConfigError) as info:
        parse_config_text(HOSTILE[name], "hostile.yaml")
    assert time.monotonic() - start < 5
    assert len(str(info.value).splitlines()) == 1


def check_cli(config: Path) -> tuple[int, str, int]:
    """`python -m engine check CONFIG`: (exit code, stderr, peak RSS in KiB)."""
    err = config.with_suffix(".err")
    with open(err, "wb") as fh:
        proc = subprocess.Popen(
            [sys.executable, "-m", "engine", "check", str(config)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=fh,
            cwd=ROOT,
            env={**os.environ, "HF_HUB_OFFLINE": "1"},
        )
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            proc.returncode = 0  # reaped by wait4
    return os.waitstatus_to_exitcode(status), err.read_text(errors="replace"), usage.ru_maxrss


@pytest.mark.slow
def test_hostile_config_files_exit_2_in_one_line_with_bounded_memory(tmp_path):
    files = {name: text.encode() for name, text in HOSTILE.items() if "nesting" in name}
    files["alias-bomb"] = HOSTILE["alias-bomb"].encode()
    files["not-utf8"] = b"train:\n  model: \xff\xfe\n"
    files["binary"] = bytes(range(256)) * 64
    files["two-megabytes"] = b"train:\n  instance_prompt: " + b"a" * (2 << 20) + b"\n"
    # The bound is relative to a plain one-line error measured the same way: a child's peak RSS
    # can include the pages of a large parent (the test process) it was forked from.
    plain = tmp_path / "plain.yaml"
    plain.write_text("train: 1\n", encoding="utf-8")
    _, _, baseline_kib = check_cli(plain)
    for name, data in files.items():
        path = tmp_path / f"{name}.yaml"
        path.write_bytes(data)
        code, stderr, rss_kib = check_cli(path)
        assert code == 2, (name, stderr)
        assert "Traceback" not in stderr
        lines = stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"error: {path}: "), (name, stderr)
        assert rss_kib < baseline_kib + 64 * 1024, (name, rss_kib, baseline_kib)
