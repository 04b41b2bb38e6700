"""`dreambooth-tui` (dreambooth_tui.main): the app for no verb or a config path, the demo, and
every engine verb handed to engine.cli, which itself never opens the app."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import dreambooth_tui
from engine import cli_demo

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def opened(monkeypatch):
    calls: list[tuple] = []

    def fake_open_app(config_path=None, *, demo=False, images=None):
        calls.append((config_path, demo, images))
        return 0

    monkeypatch.setattr(dreambooth_tui, "open_app", fake_open_app)
    return calls


def test_console_script_is_the_launcher_outside_the_engine():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert project["project"]["scripts"]["dreambooth-tui"] == "dreambooth_tui:main"
    assert "dreambooth_tui" in project["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"]


def test_no_verb_or_a_config_path_opens_the_app(opened, tmp_path):
    config = tmp_path / "mine.yaml"
    config.write_text("", encoding="utf-8")
    assert dreambooth_tui.main([]) == 0
    assert dreambooth_tui.main([str(config), "--images", "halfcell"]) == 0
    assert dreambooth_tui.main(["--images", "unicode"]) == 0
    assert opened == [(None, False, None), (config, False, "halfcell"), (None, False, "unicode")]


def test_a_missing_config_is_one_line_and_exit_2(opened, tmp_path, capsys):
    assert dreambooth_tui.main([str(tmp_path / "nope.yaml")]) == 2
    assert capsys.readouterr().err == f"error: {tmp_path / 'nope.yaml'}: config file not found\n"
    assert opened == []


def test_a_word_that_is_no_verb_nor_a_file_lists_the_verbs_and_how_to_make_a_config(
    opened, tmp_path, monkeypatch, capsys
):
    monkeypatch.chdir(tmp_path)
    assert dreambooth_tui.main(["init"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("error: init: no such verb or config file")
    assert "verbs: demo, train, check," in err[0] and "generate-worker" not in err[0]
    assert "l picks a sample config, ctrl+s saves it" in err[0] and "sample_configs" in err[0]
    assert dreambooth_tui.main(["trian"]) == 2  # a typo of a verb: the verb
    assert capsys.readouterr().err == (
        "error: trian: no such verb or config file; did you mean 'train'?\n"
    )
    assert opened == []


def test_demo_prepares_in_the_engine_then_opens_the_app(opened, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    # the builds of the builtin models: their own tests
    monkeypatch.setattr(cli_demo, "ensure_tiny_subprocess", lambda *_: 0)
    assert dreambooth_tui.main(["demo", "d.yaml", "--images", "kitty"]) == 0
    assert (tmp_path / "d.yaml").is_file()
    assert opened == [(Path("d.yaml"), True, "kitty")]
    assert dreambooth_tui.main(["demo", "d.yaml", "--no-app"]) == 0
    assert len(opened) == 1


def test_engine_verbs_go_to_the_engine(opened, tmp_path, capsys):
    assert dreambooth_tui.main(["runs", "--output-dir", str(tmp_path)]) == 0
    assert opened == []


def test_python_m_engine_without_a_verb_says_where_the_app_is(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "engine"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: no verb: the app is `dreambooth-tui` (or `python -m dreambooth_tui`)"
    ]
