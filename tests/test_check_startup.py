"""`check` and the `train` launcher answer without importing torch on a CPU-only torch build
(importing it costs seconds on a small machine); the machine they describe is torch's own."""

from __future__ import annotations

import subprocess
import sys

import pytest

from engine.config.checks import Machine, cpu_only_torch
from tests.enginehelpers import ROOT, write_config

PROBE = """
import sys
from engine.cli import main
code = main(["check", sys.argv[1]])
print("torch imported" if "torch" in sys.modules else "torch not imported", code)
"""


def test_machine_here_agrees_with_torch():
    import torch

    cuda = torch.cuda.is_available()
    assert Machine.here().cuda == cuda
    assert Machine.here().gpus == (torch.cuda.device_count() if cuda else 0)


@pytest.mark.skipif(not cpu_only_torch(), reason="the installed torch is not a +cpu build")
def test_check_does_not_import_torch_on_a_cpu_only_build(tiny_dir, tmp_path):
    cfg = write_config(tmp_path, train={"max_train_steps": 2})
    out = subprocess.run(
        [sys.executable, "-c", PROBE, str(cfg)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        env={
            "HF_HUB_OFFLINE": "1",
            "PATH": "/usr/bin:/bin",
            "DREAMBOOTH_TUI_CACHE": str(tiny_dir.parent),
        },
    )
    assert out.stdout.strip().splitlines()[-1] == "torch not imported 0", out.stdout + out.stderr
