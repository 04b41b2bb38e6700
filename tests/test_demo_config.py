"""The demo as a newcomer runs it: `dreambooth-tui demo` builds builtin:tiny-shapes (the tiny model
pre-trained on generic shapes) and writes its config; the run does what the config's comments
say, and its samples visibly move from the shape the model knew to the concept it is taught."""

from __future__ import annotations

import numpy as np
import pytest
from enginehelpers import ROOT, cli, of_type
from PIL import Image

from engine.config import load_config
from engine.events import read_events
from engine.sources import builtin_path

SAMPLE = ROOT / "sample_configs" / "demo.yaml"


@pytest.fixture(scope="module")
def demo_folder(tiny_dir, tmp_path_factory):
    """A folder in which `demo --no-app` ran: my-demo.yaml written, builtin:tiny-shapes built
    (once per test session's cache, about a minute)."""
    folder = tmp_path_factory.mktemp("demo")
    out = cli("demo", "my-demo.yaml", "--no-app", cwd=folder, timeout=600)
    assert out.returncode == 0, out.stderr
    return folder


def test_demo_writes_a_config_whose_comments_name_it(demo_folder):
    text = (demo_folder / "my-demo.yaml").read_text(encoding="utf-8")
    assert "#   dreambooth-tui train my-demo.yaml" in text
    assert "sample_configs/" not in text
    assert text.replace("my-demo.yaml", "sample_configs/demo.yaml") == SAMPLE.read_text()


def colours(image: Image.Image, bins: int = 12) -> np.ndarray:
    """The hue histogram (BINS bins, summing to 1) of an image's saturated pixels: the colours
    of what it shows, wherever it is, without its light background."""
    hsv = np.asarray(image.convert("RGB").convert("HSV"), dtype=np.float32)
    hue = hsv[..., 0][hsv[..., 1] > 100]
    counts = np.bincount((hue * bins / 256).astype(int), minlength=bins)
    return counts / max(1, counts.sum())


def colour_distance(folder, reference: np.ndarray) -> float:
    """Mean over a samples folder's images of the L1 distance (0-2) of their colours to
    REFERENCE's."""
    return float(
        np.mean(
            [np.abs(colours(Image.open(p)) - reference).sum() for p in sorted(folder.glob("*.png"))]
        )
    )


def test_the_demo_does_what_its_comments_say_and_visibly_learns(demo_folder):
    from engine.launch import prepare_run
    from engine.train import run

    text = SAMPLE.read_text(encoding="utf-8")
    assert "model: builtin:tiny-shapes" in text and "max_train_steps: 200" in text
    assert "# samples every 20 steps" in text and "validation_at_start: true" in text
    assert "# a checkpoint at step 100 (step 200 writes final/)" in text
    config = demo_folder / "my-demo.yaml"
    cfg = load_config(config, {"train": {"output_dir": str(demo_folder / "runs")}})
    run_dir = prepare_run(cfg, config.read_text(encoding="utf-8"))
    assert run(run_dir, None, ["test"]) == 0
    events = read_events(run_dir / "events.jsonl")
    assert events[-1]["status"] == "completed" and events[-1]["step"] == 200
    assert [e["step"] for e in of_type(events, "checkpoint")] == [100]
    assert (run_dir / "final" / "model_index.json").exists()
    samples = sorted((run_dir / "samples").iterdir())
    assert [p.name for p in samples] == [f"step-{s:06d}" for s in range(0, 201, 20)]
    assert all(len(list(p.glob("*.png"))) == 2 for p in samples)

    # the concept (orange ring, blue dot) against the shapes the model knew: by their colours
    concept = np.mean([colours(Image.open(p)) for p in builtin_path("images").glob("*.png")], 0)
    before = colour_distance(samples[0], concept)
    after = colour_distance(samples[-1], concept)
    # measured here: 1.79 before (a yellow and an olive shape), 0.79 after (orange, blue dots)
    assert after < 0.75 * before, (before, after)
