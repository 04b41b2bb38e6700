"""Export from the app (issue 12): `e` on the Runs screen (the selected run) and on the Generate
screen (the chosen final model or checkpoint) opens a dialog (format, fuse, precision) that runs
`python -m engine export` as a child and shows its progress, its one-line error, or the path."""

from __future__ import annotations

import sys
from pathlib import Path

from conftest_tui import wait_for
from fakeruns import add_full_checkpoint, make_full_run, make_lora_run
from rich.text import Text
from textual.widgets import Button, Checkbox, RadioSet, Select, Static

import tui.widgets.export_dialog as export_dialog
from engine.config import parse_config_text
from tui.app import DreamBoothApp
from tui.export_command import ExportChoice, export_command, source_for, written_path
from tui.screens.generate import GenerateScreen
from tui.screens.runs import RunsScreen, RunsTable
from tui.state import AppState
from tui.widgets.export_dialog import ExportModal

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "tests" / "base.yaml"  # the demo's settings on builtin:tiny


def state_for(runs: Path, run_dir: Path | None = None) -> AppState:
    text = DEMO.read_text(encoding="utf-8")
    cfg, _ = parse_config_text(text, str(DEMO), overrides={"train": {"output_dir": str(runs)}})
    state = AppState(config_path=DEMO, output_dir=runs, image_protocol="halfcell")
    state.set_config(cfg, text)
    state.run_dir = run_dir
    return state


def status_of(app) -> str:
    content = app.screen.query_one("#export-status", Static).render()
    return content.plain if isinstance(content, Text) else str(content)


def shown_keys(screen) -> set[str]:
    return {b.binding.id for b in screen.active_bindings.values() if b.enabled and b.binding.id}


def test_command_for_each_choice(tmp_path):
    run = tmp_path / "run"
    (run / "checkpoints" / "step-000004").mkdir(parents=True)
    (run / "run.json").write_text('{"method": "lora"}')
    source = source_for(run)  # no final/: the newest checkpoint
    assert source is not None and source.checkpoint == 4 and source.method == "lora"
    cmd = export_command(source, ExportChoice("single-file", True, "bf16"))
    assert cmd == [
        sys.executable,
        *("-m", "engine", "export", str(run), "--format", "single-file", "--dtype", "bf16"),
        *("--fuse", "--checkpoint", "4"),
    ]
    assert source_for(tmp_path / "empty") is None
    assert written_path("loading the final model\nwrote /x/y.safetensors\n") == Path(
        "/x/y.safetensors"
    )
    assert written_path("error: nope") is None


async def test_generate_dialog_builds_the_command_for_the_chosen_checkpoint(
    tiny_dir, tmp_path, monkeypatch
):
    run_dir = make_full_run(tmp_path / "runs")
    add_full_checkpoint(run_dir, 2)
    ran: list[list[str]] = []

    def fake_run(cmd, cancelled, **kwargs):
        ran.append(cmd)
        kwargs["progress"]("loading checkpoint 2")
        return 0, "loading checkpoint 2\nwrote /out/model [x].safetensors\n"

    monkeypatch.setattr(export_dialog, "run_polled", fake_run)
    app = DreamBoothApp(state_for(tmp_path / "runs", run_dir))
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("4")
        await wait_for(pilot, lambda: isinstance(app.screen, GenerateScreen), 10, "Generate")
        screen = app.screen
        app.set_focus(None)
        screen.query_one("#model-source", Select).value = "ckpt:2"
        await pilot.pause()
        assert "generate.export" in shown_keys(screen)
        await pilot.press("e")
        await wait_for(pilot, lambda: isinstance(app.screen, ExportModal), 10, "the dialog")
        dialog = app.screen
        await wait_for(pilot, lambda: dialog.query("#export-go"), 5, "the dialog's widgets")
        formats = [b.id for b in dialog.query_one("#export-format", RadioSet).query("RadioButton")]
        assert formats == ["format-single-file", "format-diffusers"]  # a full run: no kohya
        assert not dialog.query("#export-fuse")  # fuse is for LoRA runs
        await pilot.press("down", "enter")  # format: diffusers
        dialog.query_one("#dtype-bf16").value = True
        await pilot.click("#export-go")
        await wait_for(pilot, lambda: "wrote" in status_of(app), 10, "the result")
        assert ran == [
            [
                sys.executable,
                *("-m", "engine", "export", str(run_dir), "--format", "diffusers"),
                *("--dtype", "bf16", "--checkpoint", "2"),
            ]
        ]
        assert "/out/model [x].safetensors" in status_of(app)  # literally, brackets too
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is screen, 5, "the dialog to close")
        assert any("model [x]" in str(n.message) for n in app._notifications)
        # a source that is not a run model: nothing to export
        screen.query_one("#model-source", Select).value = "custom"
        await pilot.pause()
        assert "generate.export" not in shown_keys(screen)


async def test_runs_screen_exports_a_real_lora_run_then_refuses_to_overwrite(tiny_dir, tmp_path):
    runs = tmp_path / "runs"
    run_dir = make_lora_run(runs)
    app = DreamBoothApp(state_for(runs))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("5")
        await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen), 10, "Runs")
        screen = app.screen
        table = screen.query_one(RunsTable)
        await wait_for(pilot, lambda: table.row_count == 1, 10, "the run")
        await wait_for(pilot, lambda: "runs.export" in shown_keys(screen), 5, "the key")
        await pilot.press("e")
        await wait_for(pilot, lambda: isinstance(app.screen, ExportModal), 10, "the dialog")
        dialog = app.screen
        await wait_for(pilot, lambda: dialog.query("#export-go"), 5, "the dialog's widgets")
        fmt = dialog.query_one("#export-format", RadioSet).pressed_button
        assert fmt is not None and fmt.id == "format-kohya"  # a LoRA run: kohya first
        assert dialog.query_one("#export-fuse", Checkbox).disabled  # kohya is the LoRA alone
        assert dialog.query_one("#export-go", Button).region.bottom <= 24  # fits at 80x24

        before = status_of(app)
        await pilot.click("#export-go")  # its press may be handled after the click returns:
        # the status changes when it starts, and the export has ended when running is off again
        await wait_for(
            pilot, lambda: status_of(app) != before and not dialog.running, 180, "the export"
        )
        assert status_of(app).startswith("wrote "), status_of(app)
        out = run_dir / "exports" / "run-lora-kohya-fp16.safetensors"
        assert str(out) in status_of(app)
        from safetensors import safe_open

        with safe_open(str(out), framework="pt") as fh:
            keys = list(fh.keys())
            assert keys and all(k.startswith("lora_unet_") for k in keys)
            assert str(fh.get_tensor(next(k for k in keys if "lora_down" in k)).dtype).endswith(
                "float16"
            )

        await pilot.click("#export-go")  # the same again: the engine refuses in one line
        await wait_for(
            pilot, lambda: "exists" in status_of(app) and not dialog.running, 180, "the error"
        )
        assert "never replaced" in status_of(app) and "\n" not in status_of(app).strip()
        # what to do here: the dialog has no --output field to give another in
        assert "pick another format or precision" in status_of(app), status_of(app)
        assert "--output" not in status_of(app)
        assert not dialog.query_one("#export-go", Button).disabled  # try other options
