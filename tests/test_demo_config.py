"""The demo config does what its comments say, and the copy `dreambooth-tui demo` writes names
itself in its comments."""

from __future__ import annotations

from enginehelpers import DEMO, cli, of_type, train_in_process


def test_demo_config_does_what_its_comments_say(tiny_dir, tmp_path):
    text = DEMO.read_text(encoding="utf-8")
    assert "# samples at steps 10 and 20" in text
    assert "# a checkpoint at step 10 (step 20 writes final/)" in text
    assert "max_train_steps: 20" in text and "num_images: 2" in text
    code, run_dir, events = train_in_process(tmp_path)  # the demo as it is, runs in tmp_path
    assert code == 0 and events[-1]["status"] == "completed" and events[-1]["step"] == 20
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == ["step-000010"]
    samples = sorted((run_dir / "samples").iterdir())
    assert [p.name for p in samples] == ["step-000010", "step-000020"]
    assert all(len(list(p.glob("*.png"))) == 2 for p in samples)
    assert [e["step"] for e in of_type(events, "checkpoint")] == [10]
    assert (run_dir / "final" / "model_index.json").exists()


def test_demo_writes_a_config_whose_comments_name_it(tiny_dir, tmp_path):
    out = cli("demo", "my-demo.yaml", "--no-app", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    text = (tmp_path / "my-demo.yaml").read_text(encoding="utf-8")
    assert "#   dreambooth-tui train my-demo.yaml" in text
    assert "sample_configs/" not in text
