"""The Train/Generate widgets' pure parts, tested without an app: the plot, the meters, the log
line, the prompt history and the generate arguments."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from tui.generate_request import GenerateRequest, generate_args, model_choices
from tui.widgets.gpu_meter import bar, fmt_bytes, meter_lines
from tui.widgets.log_view import log_text
from tui.widgets.loss_plot import Series, ema, fmt_value, render_plot
from tui.widgets.prompt_input import PromptHistory

BRAILLE = range(0x2800, 0x2900)


def plain(lines) -> list[str]:
    return [line.plain for line in lines]


def dots_in(line: str) -> int:
    return sum(1 for ch in line if ord(ch) in BRAILLE)


# -- the plot ----------------------------------------------------------------------------------


def test_render_plot_shape_and_labels() -> None:
    points = [(s, 1.0 / s) for s in range(1, 201)]
    lines = plain(render_plot([Series("loss", points)], 50, 12))
    assert len(lines) == 12 and all(len(line) == 50 for line in lines)
    assert lines[0].startswith("━ loss")
    top, bottom = lines[1], lines[-3]
    assert top.startswith("1.0000┤")  # max at the top
    assert bottom.startswith("0.0050┤")  # min at the bottom
    assert lines[-2].strip().startswith("└─")
    x_axis = lines[-1].split()
    assert x_axis[0] == "1" and x_axis[-1] == "200" and "step" in x_axis
    # a falling curve: dots start top-left and end bottom-right
    assert dots_in(top[7:20]) > 0 and dots_in(top[30:]) == 0
    assert dots_in(bottom[-10:]) > 0


def test_render_plot_every_column_of_a_dense_curve_is_drawn() -> None:
    points = [(s, math.sin(s / 50)) for s in range(10_000)]
    lines = plain(render_plot([Series("x", points)], 60, 10, legend=False))
    body = lines[:-2]
    columns_with_dots = {
        c for line in body for c, ch in enumerate(line) if ord(ch) in BRAILLE and ch != "⠀"
    }
    label_w = body[0].index("┤") + 1
    assert columns_with_dots == set(range(label_w, 60))  # no holes


def test_render_plot_empty_nan_and_flat() -> None:
    lines = plain(render_plot([], 30, 6, empty="waiting"))
    assert len(lines) == 6 and any("waiting" in line for line in lines)
    nan_only = plain(render_plot([Series("l", [(1, float("nan"))])], 30, 6))
    assert any("no data yet" in line for line in nan_only)
    flat = plain(render_plot([Series("l", [(1, 0.5), (2, 0.5), (3, float("inf"))])], 30, 6))
    assert sum(dots_in(line) for line in flat) > 0


def test_render_plot_overlays_in_distinct_colours() -> None:
    a = Series("run-a", [(s, 1.0) for s in range(10)], "red")
    b = Series("run-b", [(s, 0.0) for s in range(10)], "blue")
    lines = render_plot([a, b], 40, 10)
    styles = {str(span.style) for line in lines for span in line.spans}
    assert {"red", "blue"} <= styles
    assert "run-a" in lines[0].plain and "run-b" in lines[0].plain


def test_ema_is_debiased_and_skips_nan() -> None:
    assert ema([(1, 2.0), (2, 2.0), (3, 2.0)]) == [(1, 2.0), (2, 2.0), (3, 2.0)]
    smoothed = ema([(1, 0.0), (2, float("nan")), (3, 10.0)], weight=0.5)
    assert [x for x, _ in smoothed] == [1, 3]
    assert 0 < smoothed[-1][1] < 10


def test_fmt_value() -> None:
    assert fmt_value(0.123456) == "0.1235"
    assert fmt_value(12.3456) == "12.35"
    assert fmt_value(1e-5) == "1.0e-05"
    assert fmt_value(0) == "0"


# -- meters ------------------------------------------------------------------------------------


def test_fmt_bytes_and_bar() -> None:
    assert fmt_bytes(12 << 30) == "12.00 GiB"
    assert fmt_bytes(5 << 20) == "5.0 MiB"
    assert fmt_bytes(None) == "–"
    assert bar(0.5, 10).plain == "█████░░░░░"
    assert bar(1.5, 4).plain == "████"
    assert len(bar(0.33, 9).plain) == 9
    assert bar(None, 5).plain == "─────"


def test_meter_lines_gpu() -> None:
    device = {"kind": "cuda", "name": "NVIDIA H100 80GB HBM3", "total_mem": 80 << 30}
    mem = {"allocated": 20 << 30, "reserved": 40 << 30, "peak": 76 << 30}
    gpu = {"util": 87, "mem_used": 42 << 30, "mem_total": 80 << 30, "temp_c": 65, "power_w": 310}
    text = "\n".join(line.plain for line in meter_lines(device, mem, gpu, 60))
    assert "NVIDIA H100" in text
    assert "alloc" in text and "20.00 GiB / 80.00 GiB" in text
    assert "reserved" in text and "40.00 GiB" in text
    assert "peak" in text and "76.00 GiB" in text
    assert "87%" in text and "temp 65°C" in text and "power 310 W" in text
    peak_row = next(line for line in meter_lines(device, mem, gpu, 60) if line.plain[:4] == "peak")
    assert any("red" in str(span.style) for span in peak_row.spans)  # 95% full: red


def test_meter_lines_cpu_shows_process_memory() -> None:
    device = {"kind": "cpu", "name": "cpu", "total_mem": 16 << 30}
    lines = meter_lines(device, {"allocated": 600 << 20, "peak": 700 << 20}, {}, 40)
    text = "\n".join(line.plain for line in lines)
    assert "RSS" in text and "600.0 MiB" in text and "700.0 MiB" in text
    assert "process memory" in text and "alloc" not in text and "util" not in text
    assert all(len(line.plain) <= 40 for line in lines)


def test_log_text_is_literal() -> None:
    text = log_text("warning", "[bold red]x[/] not markup")
    assert text.plain == "warning: [bold red]x[/] not markup"


# -- generate: history and arguments ------------------------------------------------------------


def test_prompt_history_recall_and_persistence(tmp_path: Path) -> None:
    path = tmp_path / "h.json"
    history = PromptHistory(path)
    for prompt in ["one", "two", "one", "  ", "three"]:
        history.add(prompt)
    assert history.items == ["two", "one", "three"]
    assert history.previous("draft") == "three"
    assert history.previous("ignored") == "one"
    assert history.previous("") == "two"
    assert history.previous("") is None  # oldest reached
    assert history.next() == "one"
    assert history.next() == "three"
    assert history.next() == "draft"  # back to what was being typed
    assert history.next() is None
    assert PromptHistory(path).items == ["two", "one", "three"]


def request(**kw) -> GenerateRequest:
    base = dict(
        source="custom",
        run_dir=None,
        model="builtin:tiny",
        lora="",
        prompt="[bold red]x[/] 'quoted'",
        negative_prompt="",
        num_images="2",
        steps="3",
        guidance="7.5",
        seed="0",
        scheduler="ddim",
    )
    base.update(kw)
    return GenerateRequest(**base)


def test_generate_args_sources(tmp_path: Path) -> None:
    assert generate_args(request()) == [
        "--model", "builtin:tiny",
        "--prompt", "[bold red]x[/] 'quoted'",
        "--num-images", "2",
        "--num-inference-steps", "3",
        "--guidance-scale", "7.5",
        "--seed", "0",
        "--scheduler", "ddim",
    ]  # fmt: skip
    run = generate_args(request(source="final", run_dir=tmp_path))
    assert run[:2] == ["--run", str(tmp_path)] and "--checkpoint" not in run
    ckpt = generate_args(request(source="ckpt:500", run_dir=tmp_path, seed=""))
    assert ckpt[:4] == ["--run", str(tmp_path), "--checkpoint", "500"] and "--seed" not in ckpt
    lora = generate_args(request(source="lora", lora="/x/w.safetensors", negative_prompt="blur"))
    assert lora[:4] == ["--model", "builtin:tiny", "--lora", "/x/w.safetensors"]
    assert lora[lora.index("--negative-prompt") + 1] == "blur"


@pytest.mark.parametrize(
    ("kw", "field"),
    [
        ({"num_images": "0"}, "count"),
        ({"steps": "x"}, "steps"),
        ({"guidance": "-1"}, "guidance"),
        ({"seed": "-3"}, "seed"),
        ({"prompt": "  "}, "prompt"),
        ({"model": ""}, "model"),
        ({"source": "lora", "lora": ""}, "LoRA"),
        ({"source": "final"}, "model"),
        ({"scheduler": "heun"}, "scheduler"),
    ],
)
def test_generate_args_errors_name_the_field(kw: dict, field: str) -> None:
    with pytest.raises(ValueError, match=field):
        generate_args(request(**kw))


def test_model_choices(tmp_path: Path) -> None:
    assert [v for _, v in model_choices(None)] == ["custom", "lora"]
    (tmp_path / "final").mkdir()
    for step in (10, 200, 30):
        (tmp_path / "checkpoints" / f"step-{step:06d}").mkdir(parents=True)
    (tmp_path / "checkpoints" / ".tmp-step-000300").mkdir()
    values = [v for _, v in model_choices(tmp_path)]
    assert values == ["final", "ckpt:200", "ckpt:30", "ckpt:10", "custom", "lora"]


def test_meter_lines_with_readings_taken_on_an_h200() -> None:
    # device/mem/gpu as the engine emitted them on an NVIDIA H200 (4 GiB held, matmuls running)
    device = {"kind": "cuda", "name": "NVIDIA H200", "total_mem": 150109880320}
    mem = {"allocated": 4596957184, "reserved": 4731174912, "peak": 4731174912}
    gpu = {"util": 99, "mem_used": 5999820800, "mem_total": 150754820096, "temp_c": 55,
           "power_w": 689.29}  # fmt: skip
    for width, compact in ((60, False), (36, False), (36, True)):
        lines = meter_lines(device, mem, gpu, width, compact=compact)
        assert all(len(line.plain) <= width for line in lines)
        bars = [line.plain for line in lines if "░" in line.plain or "█" in line.plain]
        starts = {b.index(next(c for c in b[9:] if c in "█▉▊▋▌▍▎▏░")) for b in bars}
        ends = {max(b.rfind("░"), b.rfind("█")) for b in bars if "░" in b}
        assert len(starts) == 1 and len(ends) <= 1  # one column for every bar
    text = "\n".join(line.plain for line in meter_lines(device, mem, gpu, 60))
    assert "4.28 GiB / 139.80 GiB" in text and "5.59 GiB" in text and "99%" in text
    assert "temp 55°C  power 689 W" in text
    compact = "\n".join(line.plain for line in meter_lines(device, mem, gpu, 36, compact=True))
    assert "NVIDIA" not in compact and "util 99% · 55°C · 689 W" in compact


def test_render_plot_y_labels_are_as_wide_as_the_widest_including_the_middle() -> None:
    # top 0.0015 and bottom 0 fit 6 cells; the middle label 7.5e-04 needs 7
    points = [(s, 0.0015 * (s % 2)) for s in range(40)]
    lines = plain(render_plot([Series("lr", points)], 40, 12, legend=False))
    body = lines[:-2]
    assert any(line.lstrip().startswith("7.5e-04┤") for line in body)
    axis_columns = {next(c for c, ch in enumerate(line) if ch in "┤│") for line in body}
    assert axis_columns == {7}  # every row's axis in the same column
    assert all(len(line) == 40 for line in lines)
    assert lines[-2].index("└") == 7


def test_plot_reduces_a_long_run_to_at_most_two_points_per_column() -> None:
    from tui.widgets.plot_data import reduce_points

    points = [(s, math.sin(s / 700) + 0.1 * math.sin(s * 1.7)) for s in range(1, 100_001)]
    reduced = reduce_points(points, 1, 100_000, 160)
    assert 0 < len(reduced) <= 160
    assert len({c for c, _, _ in reduced}) == len(reduced)  # one (lowest, highest) per column
    # the same envelope as walking every point
    naive: dict[int, list[float]] = {}
    for x, y in points:
        c = min(159, int((x - 1) / (100_000 - 1) * 159 + 0.5))
        naive.setdefault(c, []).append(y)
    assert {c: (lo, hi) for c, lo, hi in reduced} == {
        c: (min(ys), max(ys)) for c, ys in naive.items()
    }


def test_smoothed_curve_is_extended_with_new_points_not_recomputed(monkeypatch) -> None:
    from tui.widgets import loss_plot

    plot = loss_plot.LossPlot()
    points = [(s, 1.0 / s + (0.1 if s % 3 else float("nan"))) for s in range(1, 2001)]
    plot.add_points(points[:1500], "loss")
    calls = []
    monkeypatch.setattr(loss_plot, "ema", lambda *a, **k: calls.append(1) or ema(*a, **k))
    plot.build_series()
    plot.add_points(points[1500:], "loss")
    series = plot.build_series()
    assert calls == []  # a redraw does not walk the whole history again
    smoothed = next(s for s in series if s.name == "loss (smoothed)")
    expected = ema(points)
    got = plot.smoothed_points("loss")
    assert [x for x, _ in got] == [x for x, _ in expected]
    assert [y for _, y in got] == pytest.approx([y for _, y in expected], rel=1e-9)
    assert len(smoothed.points) == len(expected)


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
async def test_choice_dialog_wraps_its_message_inside_the_box(size):
    from rich.cells import cell_len
    from textual.app import App
    from textual.widgets import Static

    from tui.widgets.modals import Choice, ChoiceModal

    name = "20261129-053201-a-photo-of-sks-dog-on-a-very-long-prompt"
    message = f"{name} finishes its current step, saves a checkpoint and stops. " * 2
    app = App()
    async with app.run_test(size=size) as pilot:
        app.push_screen(ChoiceModal("Stop the run?", message, [Choice("stop", "Stop")]))
        await pilot.pause()
        await pilot.pause()
        label = app.screen.query_one(".dialog-message", Static)
        box = app.screen.query_one(".dialog")
        assert label.region.right <= box.content_region.right
        assert label.size.width * label.size.height >= cell_len(message.strip())
        shown = " ".join(
            "".join(seg.text for seg in line).strip()
            for line in label.render_lines(label.region.reset_offset)
        )
        assert " ".join(shown.split()) == " ".join(message.split())  # every word, in order


async def test_form_selects_survive_the_app_closing_while_they_mount():
    """Quitting while a form still mounts its fields: Textual's Select queried its removed
    children on Mount and the app ended with NoMatches (the Config form's choice fields)."""
    from textual.app import App
    from textual.containers import Vertical

    from tui.widgets.config_form import FieldRow
    from tui.widgets.form_select import FormSelect

    class Form(App):
        def compose(self):
            yield Vertical(id="box")

    for _ in range(5):
        app = Form()
        async with app.run_test():
            box = app.query_one("#box")
            for key in ("mixed_precision", "optimizer", "lr_scheduler", "method"):
                box.mount(FieldRow("train", key))
        # leaving the block closes the app while the fields mount: no exception
    app = Form()
    async with app.run_test() as pilot:
        await app.query_one("#box").mount(FieldRow("train", "mixed_precision", "bf16"))
        await pilot.pause()
        select = app.query_one(FormSelect)
        assert select.value == "bf16"  # set up as usual when nothing is torn down
