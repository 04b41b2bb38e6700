"""Sharded accelerate modes (DeepSpeed, FSDP) are refused in one line, exit 2, before any model
loads: the engine saves rank 0's state, which under sharding is only a part of the model."""

from __future__ import annotations

from enginehelpers import cli, of_type, train_in_process, write_config

from engine.launch import accelerate_config_problem

DEEPSPEED = "compute_environment: LOCAL_MACHINE\ndistributed_type: DEEPSPEED\nnum_processes: 2\n"
FSDP_SECTION = "distributed_type: MULTI_GPU\nfsdp_config:\n  fsdp_sharding_strategy: FULL_SHARD\n"
PLAIN = "distributed_type: MULTI_GPU\nnum_processes: 2\nfsdp_config: {}\ndeepspeed_config: {}\n"


def test_accelerate_config_problem_names_the_file_and_the_mode(tmp_path):
    for text, mode in ((DEEPSPEED, "DeepSpeed"), (FSDP_SECTION, "FSDP")):
        path = tmp_path / "acc.yaml"
        path.write_text(text)
        problem = accelerate_config_problem(path)
        assert problem is not None and str(path) in problem and mode in problem
        assert "\n" not in problem
    path.write_text(PLAIN)
    assert accelerate_config_problem(path) is None
    assert "cannot read" in accelerate_config_problem(tmp_path / "missing.yaml")


def test_check_and_train_refuse_a_deepspeed_config_in_one_line(tiny_dir, tmp_path):
    cfg = write_config(tmp_path)
    acc = tmp_path / "deepspeed.yaml"
    acc.write_text(DEEPSPEED)
    for verb in ("check", "train"):
        out = cli(verb, str(cfg), "--accelerate-config", str(acc))
        assert out.returncode == 2, out.stderr
        lines = [line for line in out.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and str(acc) in lines[0] and "DeepSpeed" in lines[0], lines
    assert not (tmp_path / "runs").exists()  # nothing was prepared


def test_engine_refuses_a_sharded_launch_before_loading_models(tiny_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("ACCELERATE_USE_FSDP", "true")
    code, run_dir, events = train_in_process(tmp_path)
    assert code == 2
    (error,) = of_type(events, "error")
    assert error["kind"] == "config" and "FSDP" in error["message"]
    assert not of_type(events, "phase")  # refused before loading_models
    assert events[-1]["type"] == "finished" and events[-1]["status"] == "failed"
