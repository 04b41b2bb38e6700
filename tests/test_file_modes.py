"""Written outputs get the modes the user's umask gives a new file, not the 0600 that
safetensors (>= 0.8, through its temp file) and mkstemp/mkdtemp give: another user's ComfyUI or
A1111 (a container, a service account) must be able to read a trained model."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from engine.config import load_config
from engine.config.yaml_write import save_config
from engine.export.files import save_folder, save_safetensors
from engine.file_modes import current_umask, usual_modes
from tests.enginehelpers import DEMO


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def umask_027() -> Iterator[None]:
    """A umask other than the usual 022, so the modes are seen to come from it."""
    old = os.umask(0o027)
    try:
        yield
    finally:
        os.umask(old)


def test_safetensors_alone_writes_0600(tmp_path):
    """Why this module exists (if safetensors stops doing this, the fix is harmless)."""
    save_file({"w": torch.zeros(2)}, str(tmp_path / "w.safetensors"))
    if mode(tmp_path / "w.safetensors") != 0o600:
        pytest.skip("this safetensors writes files with the umask's mode already")


def test_current_umask_is_the_process_umask(umask_027):
    assert current_umask() == 0o027


def test_usual_modes_follow_the_umask(tmp_path, umask_027):
    folder = tmp_path / "out"
    (folder / "sub").mkdir(parents=True)
    os.chmod(folder, 0o700)
    save_file({"w": torch.zeros(2)}, str(folder / "sub" / "w.safetensors"))
    os.chmod(folder / "sub" / "w.safetensors", 0o600)
    usual_modes(folder)
    assert mode(folder) == mode(folder / "sub") == 0o750
    assert mode(folder / "sub" / "w.safetensors") == 0o640


def test_export_file_and_folder_get_the_umask_modes(tmp_path, umask_027):
    save_safetensors({"w": torch.zeros(2)}, tmp_path / "lora.safetensors")
    assert mode(tmp_path / "lora.safetensors") == 0o640

    def write(folder: Path) -> None:
        (folder / "unet").mkdir()
        save_file({"w": torch.zeros(2)}, str(folder / "unet" / "model.safetensors"))

    save_folder(write, tmp_path / "fused")
    assert mode(tmp_path / "fused") == mode(tmp_path / "fused" / "unet") == 0o750
    assert mode(tmp_path / "fused" / "unet" / "model.safetensors") == 0o640


def test_a_new_config_file_gets_the_umask_mode_and_a_saved_one_keeps_its_own(tmp_path, umask_027):
    cfg = load_config(DEMO)
    new = tmp_path / "new.yaml"
    save_config(cfg, new)
    assert mode(new) == 0o640
    os.chmod(new, 0o664)
    save_config(cfg, new)
    assert mode(new) == 0o664
