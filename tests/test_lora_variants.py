"""LoRA variants (issue 12): train.lora_targets, lora_dropout, use_dora and text_encoder_lr each
change what they name (the adapted modules, the adapters' dropout, trained magnitude vectors,
the optimizer's groups); a DoRA and an ff/conv LoRA reload in diffusers' `load_lora_weights` and
remake the run's last samples exactly (so does `generate --run`); the kohya export holds
ff/conv targets pixel-exactly and refuses a DoRA in one line (whose fused single file gives
the run's images)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open

from engine import cli
from engine.families import SD
from engine.families.lora import TARGETS, LoraSpec
from engine.resume_rules import config_changes
from engine.runs import LORA_FILE
from tests.enginehelpers import of_type, prepare, remade, train_in_process
from tests.test_run_outputs import PROMPT, assert_same_images, generated, pixels, samples_of

TRAIN = {
    "method": "lora",
    "lora_rank": 4,
    "lora_alpha": 8,
    "train_text_encoder": True,
    "max_train_steps": 2,
    "validation_steps": 2,
    "checkpointing_steps": 100,
    "learning_rate": 1e-2,
}
EVALUATION = {"num_images": 2, "num_inference_steps": 3, "seed": 3, "scheduler": "euler_a"}


def _adapted(module: torch.nn.Module) -> dict[str, torch.nn.Module]:
    """The modules peft put an adapter on, by name."""
    from peft.tuners.lora import LoraLayer

    return {n: m for n, m in module.named_modules() if isinstance(m, LoraLayer)}


def _run(root: Path, **train) -> tuple[Path, list[dict]]:
    code, run_dir, events = train_in_process(root, train={**TRAIN, **train}, evaluation=EVALUATION)
    assert code == 0, of_type(events, "error")
    return run_dir, events


@pytest.fixture(scope="module")
def dora_run(tiny_dir, tmp_path_factory):
    """DoRA on attention + feed-forward, with LoRA dropout, UNet and text encoder."""
    root = tmp_path_factory.mktemp("dora")
    return _run(root, use_dora=True, lora_dropout=0.2, lora_targets="attention+ff")


@pytest.fixture(scope="module")
def conv_run(tiny_dir, tmp_path_factory):
    """Every target (convolutions too), its own text-encoder rate, the kohya file at the end."""
    root = tmp_path_factory.mktemp("conv")
    return _run(root, lora_targets="all", text_encoder_lr=1e-3, export=["kohya"])


def _with_lora(tiny_dir: Path, spec: LoraSpec, text: bool = True):
    """The tiny model's parts with adapters made from `spec` (text encoder too when `text`)."""
    parts = SD.load(str(tiny_dir / "model"))
    SD.add_lora(parts.unet, spec, {"text_encoder": parts.text_encoder} if text else {})
    return parts


def test_lora_targets_choose_the_adapted_modules(tiny_dir):
    from engine.config import TrainConfig

    assert TrainConfig.model_fields["lora_targets"].default == "attention"
    found = {}
    for targets in TARGETS:
        parts = _with_lora(tiny_dir, LoraSpec(4, 4, targets=targets))
        found[targets] = (_adapted(parts.unet), _adapted(parts.text_encoder))
    unet_attn, text_attn = (set(d) for d in found["attention"])
    # the default is the set runs always adapted: the attention projections, nothing else
    assert unet_attn and all(n.endswith(("to_q", "to_k", "to_v", "to_out.0")) for n in unet_attn)
    assert text_attn and all(
        n.endswith(("q_proj", "k_proj", "v_proj", "out_proj")) for n in text_attn
    )
    unet_ff, text_ff = (set(d) for d in found["attention+ff"])
    assert unet_attn < unet_ff and text_attn < text_ff
    assert {n.split(".ff.")[1] for n in unet_ff - unet_attn} == {"net.0.proj", "net.2"}
    assert {n.rsplit(".", 1)[1] for n in text_ff - text_attn} == {"fc1", "fc2"}
    unet_all, text_all = found["all"]
    assert unet_ff < set(unet_all) and set(text_all) == text_ff
    convs = {n for n, m in unet_all.items() if isinstance(m.get_base_layer(), torch.nn.Conv2d)}
    assert {"down_blocks.0.resnets.0.conv1", "down_blocks.0.downsamplers.0.conv"} <= convs
    assert not convs & {"conv_in", "conv_out"}  # the first and last convolutions stay as trained


def test_lora_dropout_is_on_every_adapter_and_off_in_the_saved_metadata(tiny_dir, tmp_path):
    parts = _with_lora(tiny_dir, LoraSpec(4, 4, dropout=0.25))
    layers = [*_adapted(parts.unet).values(), *_adapted(parts.text_encoder).values()]
    drops = [layer.lora_dropout["default"] for layer in layers]
    assert all(isinstance(d, torch.nn.Dropout) and d.p == 0.25 for d in drops)
    plain = _with_lora(tiny_dir, LoraSpec(4, 4))
    assert all(
        isinstance(m.lora_dropout["default"], torch.nn.Identity)
        for m in _adapted(plain.unet).values()
    )
    # the file says 0: a loader would otherwise leave dropout on at inference (peft's new modules
    # are in training mode), and images would be noisy
    path = SD.save_lora(tmp_path, parts.unet, {"text_encoder": parts.text_encoder})
    meta = _metadata(path)
    assert meta["unet.lora_dropout"] == meta["text_encoder.lora_dropout"] == 0.0


def _metadata(path: Path) -> dict:
    import json

    with safe_open(str(path), framework="pt") as fh:
        return json.loads(fh.metadata()["lora_adapter_metadata"])


def test_dora_adds_magnitude_vectors_that_training_changes(tiny_dir, tmp_path):
    from engine.config import load_config
    from engine.train import Trainer

    run_dir = prepare(tmp_path, train={**TRAIN, "use_dora": True}, evaluation=EVALUATION)
    trainer = Trainer(run_dir, None, ["test"])
    trainer.cfg = load_config(run_dir / "config.yaml")
    trainer.setup()
    trainer.prepare()
    modules = {"unet": trainer.unet, "text_encoder": trainer.text_encoder}
    before = {}
    for name, module in modules.items():
        layers = _adapted(module)
        magnitudes = {n: m.lora_magnitude_vector["default"].weight for n, m in layers.items()}
        assert layers and magnitudes.keys() == layers.keys(), name  # one per adapted module
        assert all(p.requires_grad for p in magnitudes.values())
        before[name] = {n: p.detach().clone() for n, p in magnitudes.items()}
    trainer.train_step(1)
    for name, module in modules.items():
        for n, layer in _adapted(module).items():
            after = layer.lora_magnitude_vector["default"].weight.detach()
            assert not torch.equal(after, before[name][n]), (name, n)


def test_text_encoder_lr_is_the_text_encoders_param_group(tiny_dir, tmp_path):
    from engine.config import load_config
    from engine.train import Trainer

    def groups(**train) -> tuple[list[tuple[float, int]], int]:
        run_dir = prepare(tmp_path / str(len(train)), train={**TRAIN, **train})
        trainer = Trainer(run_dir, None, ["test"])
        trainer.cfg = load_config(run_dir / "config.yaml")
        trainer.setup()
        trainer.prepare()
        te = {id(p) for p in trainer.text_encoder.parameters() if p.requires_grad}
        return [
            (g["lr"], sum(id(p) in te for p in g["params"]))
            for g in trainer.opt.optimizer.param_groups
        ], len(te)

    (unet, text), n_te = groups(text_encoder_lr=3e-4, learning_rate=1e-2)
    assert unet == (1e-2, 0) and text == (3e-4, n_te) and n_te > 0
    (single,), n_te = groups()  # unset: one group at learning_rate, as before
    assert single == (1e-2, n_te)


def test_resume_refuses_a_change_of_dora_targets_or_text_encoder_lr():
    old = {"train": {"use_dora": False, "lora_targets": "attention", "text_encoder_lr": None}}
    new = {"train": {"use_dora": True, "lora_targets": "all", "text_encoder_lr": 1e-5}}
    frozen, followed = config_changes(old, new)
    assert [c[0] for c in frozen] == [
        "train.use_dora",
        "train.lora_targets",
        "train.text_encoder_lr",
    ]
    assert followed == []
    _, followed = config_changes({"train": {"lora_dropout": 0.0}}, {"train": {"lora_dropout": 0.1}})
    assert [c[0] for c in followed] == ["train.lora_dropout"]


def _remade(pipe) -> list[np.ndarray]:
    return remade(pipe, EVALUATION, PROMPT)


def _base(tiny_dir: Path):
    return SD.pipeline_class().from_pretrained(tiny_dir / "model", **SD.pipeline_extras)


@pytest.mark.parametrize("kind", ["dora+ff", "conv"])
def test_lora_variant_reloads_in_diffusers_and_generate_remakes_the_last_samples(
    kind, request, tiny_dir, tmp_path
):
    run_dir, events = request.getfixturevalue("dora_run" if kind == "dora+ff" else "conv_run")
    meta = _metadata(run_dir / "final" / LORA_FILE)
    want_targets = set(TARGETS["attention+ff" if kind == "dora+ff" else "all"][0])
    assert set(meta["unet.target_modules"]) == want_targets
    assert meta["unet.use_dora"] is meta["text_encoder.use_dora"] is (kind == "dora+ff")
    last = samples_of(run_dir, events, 2)
    watched = [pixels(p) for p in last]
    pipe = _base(tiny_dir)
    plain = _remade(pipe)
    pipe.load_lora_weights(run_dir / "final", weight_name=LORA_FILE)
    config = pipe.unet.peft_config["default_0"]
    assert config.use_dora is (kind == "dora+ff") and set(config.target_modules) == want_targets
    made = _remade(pipe)
    assert not np.array_equal(plain[0], watched[0])  # the LoRA changes the images
    for a, b in zip(made, watched, strict=True):
        assert np.array_equal(a, b)
    assert_same_images(generated(tmp_path / "gen", run_dir, "--run", str(run_dir)), last)


def test_kohya_export_of_ff_and_conv_targets_gives_the_runs_images(conv_run, tiny_dir, tmp_path):
    from engine.generate import load_pipeline

    run_dir, events = conv_run
    (kohya,) = of_type(events, "finished")[-1]["outputs"]["exports"]
    weights = safe_open(str(run_dir / kohya), framework="pt")
    modules = {k.split(".")[0] for k in weights.keys()}
    assert "lora_unet_down_blocks_0_resnets_0_conv1" in modules  # a convolution
    assert any(m.endswith("_ff_net_2") for m in modules)
    assert any(m.startswith("lora_te_") and m.endswith("_mlp_fc1") for m in modules)
    # fp32 for pixel equality (train.export writes fp16)
    out = tmp_path / "concept.safetensors"
    argv = ["export", str(run_dir), "--format", "kohya", "--dtype", "fp32", "--output", str(out)]
    assert cli.main(argv) == 0
    own = _remade(load_pipeline(run_dir=run_dir, device="cpu", dtype="fp32"))
    pipe = _base(tiny_dir)
    pipe.load_lora_weights(str(tmp_path), weight_name=out.name)
    for a, b in zip(_remade(pipe), own, strict=True):
        assert np.array_equal(a, b)


def test_kohya_export_refuses_a_dora_in_one_line(dora_run, tmp_path, capsys):
    run_dir, _ = dora_run
    out = tmp_path / "dora.safetensors"
    code = cli.main(["export", str(run_dir), "--format", "kohya", "--output", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and "DoRA" in err and err.count("\n") == 1 and "Traceback" not in err, err
    assert not out.exists()


def test_dora_fused_single_file_gives_the_runs_images(dora_run, tiny_dir, tmp_path):
    """What the kohya refusal points to: the DoRA merged into its base as one original-layout
    file, which from_single_file loads with the run's images (up to fusing's float rounding)."""
    from engine.generate import load_pipeline

    run_dir, _ = dora_run
    out = tmp_path / "fused.safetensors"
    argv = ["export", str(run_dir), "--format", "single-file", "--fuse", "--dtype", "fp32"]
    assert cli.main([*argv, "--output", str(out)]) == 0
    fused = SD.pipeline_class().from_single_file(
        str(out), config=str(tiny_dir / "model"), local_files_only=True, safety_checker=None
    )
    own = _remade(load_pipeline(run_dir=run_dir, device="cpu", dtype="fp32"))
    plain = _remade(_base(tiny_dir))
    got = _remade(fused)
    assert np.abs(own[0].astype(int) - plain[0].astype(int)).max() > 3  # the DoRA shows
    for a, b in zip(got, own, strict=True):
        assert np.abs(a.astype(int) - b.astype(int)).max() <= 1  # uint8 pixels: rounding only
