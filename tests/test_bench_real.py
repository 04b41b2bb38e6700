"""The real-script comparison's parts: the wrapper that times a script's progress bar and reads its
peak memory, the steady-state rate, the careful-user flags, and the prepare step that brings in
diffusers' scripts. (Its whole run on the tiny model takes minutes on this box: the command is in
benchmarks/RESULTS.md.)"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from benchmarks import real_scripts as rs
from benchmarks.bench_real import steady_state
from benchmarks.common import ROOT


def test_steady_state_counts_from_the_warmup_step():
    # steps 0-3 slow (warm-up, compilation), then 0.1 s per step; one update covers two steps
    points = [(0.0, 0), (5.0, 1), (9.0, 2), (10.0, 3), (10.1, 4), (10.2, 5), (10.4, 7)]
    s = steady_state(points, warmup=3)
    assert s["steps_per_s"] == pytest.approx(4 / 0.4)
    assert s["timed_steps"] == 4 and s["updates"] == 4
    assert s["step_ms_min"] == pytest.approx(100) and s["step_ms_max"] == pytest.approx(100)
    assert "error" in steady_state(points, warmup=7)


SCRIPT = textwrap.dedent(
    """
    import json, sys, time
    from pathlib import Path
    from tqdm.auto import tqdm

    out = Path(sys.argv[sys.argv.index("--out_dir") + 1])
    (out / "argv.txt").write_text("\\n".join(sys.argv[1:]))
    for _ in tqdm(range(3), desc="Loading"):
        pass
    bar = tqdm(range(6), desc="Steps")
    for i in range(6):
        time.sleep(0.02)
        bar.update(1)
        bar.set_postfix(loss=0.5)  # refreshes the bar every step, as the scripts do
    json.dumps({})  # the benchmark stops the script here
    (out / "after_stop").write_text("not reached")
    """
)


def test_run_wrapped_times_the_steps_bar_and_stops_where_asked(tmp_path: Path):
    script = tmp_path / "train_fake.py"
    script.write_text(SCRIPT)
    result = tmp_path / "result.json"
    cmd = [sys.executable, "-m", "benchmarks.run_wrapped", "--out", str(result)]
    cmd += ["--stop-at", "json:dumps", "--script", str(script), "--", "--out_dir", str(tmp_path)]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(result.read_text())
    assert (tmp_path / "argv.txt").read_text().split("\n") == ["--out_dir", str(tmp_path)]
    assert data["stopped_at"] == "json:dumps" and not (tmp_path / "after_stop").exists()
    steps = [n for _, n in data["progress"]]
    assert steps == sorted(set(steps)) and steps[-1] == 6  # the Steps bar only, each step once
    times = [t for t, _ in data["progress"]]
    assert times == sorted(times) and times[-1] - times[0] >= 0.02 * 5
    assert data["device"] == "cpu" and data["peak_mem"] > 10 << 20
    assert "Steps" in proc.stderr  # the script's own output still reaches the log


def test_run_wrapped_reports_a_failing_script(tmp_path: Path):
    script = tmp_path / "broken.py"
    script.write_text("raise ValueError('bad flag')\n")
    result = tmp_path / "result.json"
    cmd = [sys.executable, "-m", "benchmarks.run_wrapped", "--out", str(result), "--script"]
    proc = subprocess.run([*cmd, str(script)], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 1
    assert json.loads(result.read_text())["error"] == "ValueError: bad flag"


def _cfg(tmp_path: Path, **train):
    from engine.config import load_config

    base = {"model": str(tmp_path), "instance_data": str(tmp_path), "instance_prompt": "a sks"}
    return load_config(ROOT / "tests" / "base.yaml", {"train": {**base, **train}})


def test_script_argv_sets_the_careful_user_flags(tmp_path: Path):
    name, full = rs.script_argv(
        _cfg(tmp_path, optimizer="adamw8bit", gradient_checkpointing=True),
        tmp_path, tmp_path, tmp_path / "o", 30, cuda=True,
    )  # fmt: skip
    assert name == "train_dreambooth.py"
    for flag in ("--pre_compute_text_embeddings", "--set_grads_to_none", "--allow_tf32"):
        assert flag in full
    assert "--use_8bit_adam" in full and "--gradient_checkpointing" in full
    assert "--max_train_steps=30" in full
    name, lora = rs.script_argv(
        _cfg(tmp_path, method="lora", lora_rank=8), tmp_path, tmp_path, tmp_path, 30, cuda=False
    )
    assert name == "train_dreambooth_lora.py" and "--rank=8" in lora
    assert "--set_grads_to_none" not in lora and "--allow_tf32" not in lora  # (no such flag / CPU)
    assert "--use_8bit_adam" not in lora and "--gradient_checkpointing" not in lora
    with pytest.raises(ValueError):
        rs.script_argv(_cfg(tmp_path, snr_gamma=5.0), tmp_path, tmp_path, tmp_path, 30, False)
    # Where the scripts are prepared, every flag is one they define.
    if (rs.DEST / "SOURCE.json").exists():
        for script, flags in (("train_dreambooth.py", full), ("train_dreambooth_lora.py", lora)):
            defined = set(re.findall(r'"(--[a-z0-9_]+)"', (rs.DEST / script).read_text()))
            assert {f.split("=")[0] for f in flags} <= defined, script


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), *args], check=True, capture_output=True, text=True
    ).stdout.strip()


def test_prepare_takes_the_scripts_of_a_tagged_release_from_a_clone(tmp_path: Path):
    repo = tmp_path / "diffusers"
    (repo / "examples" / "dreambooth").mkdir(parents=True)
    (repo / "setup.py").write_text('setup(\n    version="9.1.0",\n)\n')
    for name in rs.SCRIPTS:
        (repo / "examples" / "dreambooth" / name).write_text(f"# {name} at the release\n")
    _git(repo, "init", "-q")
    _git(repo, "add", ".")
    _git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "release")
    _git(repo, "tag", "v9.1.0")
    commit = _git(repo, "rev-parse", "HEAD")
    (repo / "examples" / "dreambooth" / rs.SCRIPTS[0]).write_text("# later, on main\n")
    dest = tmp_path / "ref"
    assert rs.main(["prepare", "--git", str(repo), "--ref", "v9.1.0", "--dest", str(dest)]) == 0
    assert (dest / rs.SCRIPTS[0]).read_text() == f"# {rs.SCRIPTS[0]} at the release\n"
    info = rs.source_info(dest)
    assert info["commit"] == commit and info["diffusers_version"] == "9.1.0"
    assert set(info["sha256"]) == set(rs.SCRIPTS)


def test_prepare_refuses_a_ref_without_the_scripts_in_one_line(tmp_path: Path, capsys):
    repo = tmp_path / "other"
    repo.mkdir()
    (repo / "setup.py").write_text('version="1.0"\n')
    _git(repo, "init", "-q")
    _git(repo, "add", ".")
    _git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "x")
    dest = tmp_path / "ref"
    assert rs.main(["prepare", "--git", str(repo), "--ref", "HEAD", "--dest", str(dest)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err
    assert not dest.exists()
    with pytest.raises(rs.PrepareError, match="real_scripts prepare"):
        rs.source_info(dest)


def test_an_sdxl_model_is_refused_in_one_line(capsys):
    from benchmarks.bench_real import parse_args

    with pytest.raises(SystemExit) as exit_info:
        parse_args(["--model", "sdxl-arch"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "sdxl-arch" in err and "bench_train" in err
