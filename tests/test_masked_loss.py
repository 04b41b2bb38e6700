"""`train.masked_loss` (issue 12): an instance image's mask (`<name>.mask.png` or its alpha
channel) limits the loss to the subject; masks go through the same crop, flip and bucket as
their image, survive latent caching, and are reported (found, bad) by the dataset check."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from engine.cli import main as cli_main
from engine.doctor import check_folder
from engine.images import list_image_files
from engine.recipe import dreambooth_loss
from tests.enginehelpers import losses, of_type, prepare, train_in_process

QUIET = {"validation_steps": 100, "checkpointing_steps": 100}


def _ramp_mask(w: int, h: int) -> np.ndarray:
    """An asymmetric mask (a flip or a shifted crop shows): 0 on the left, rising to 255."""
    x = np.linspace(-255, 255, w).clip(0, 255)
    y = np.linspace(0.5, 1.0, h)[:, None]
    return (x[None, :] * y).round().astype(np.uint8)


def _image(w: int, h: int, seed: int, red: np.ndarray | None = None) -> Image.Image:
    rgb = np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)
    if red is not None:
        rgb[..., 0] = red
    return Image.fromarray(rgb)


def _masked_folder(tmp: Path, sizes: list[tuple[int, int]], half: bool = False) -> Path:
    """Images whose red channel IS their mask (so any view of the image shows where its mask
    view must be); `half`: the mask is 0 on the left half, 255 on the right."""
    folder = tmp / "masked"
    folder.mkdir(parents=True)
    for n, (w, h) in enumerate(sizes):
        if half:
            mask = np.zeros((h, w), np.uint8)
            mask[:, w // 2 :] = 255
        else:
            mask = _ramp_mask(w, h)
        _image(w, h, n, mask).save(folder / f"img{n}.png")
        Image.fromarray(mask).save(folder / f"img{n}.mask.png")
    return folder


def _trainer(tmp: Path, **train):
    from engine.config import load_config
    from engine.runs import CONFIG_FILE
    from engine.train import Trainer

    run_dir = prepare(tmp, train={**QUIET, "masked_loss": True, **train})
    trainer = Trainer(run_dir, None, ["test"])
    trainer.cfg = load_config(run_dir / CONFIG_FILE)
    trainer.setup()
    trainer.prepare()
    return trainer


def _red_weights(pixels: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """What a view's loss weights must be: its red channel (pixels in [-1, 1]) in [0, 1],
    area-averaged to the latent size."""
    red = (pixels[:, :1].float() + 1) / 2
    return F.interpolate(red, size=size, mode="area")


# ---------------------------------------------------------------------------------- the loss
def test_loss_ignores_the_masked_out_half_of_the_prediction():
    gen = torch.Generator().manual_seed(0)
    pred = torch.randn((2, 4, 8, 8), generator=gen, requires_grad=True)
    target = torch.randn((2, 4, 8, 8), generator=gen)
    weights = torch.ones((2, 1, 8, 8))
    weights[..., :4] = 0  # the left half is not the subject
    t = torch.zeros(2, dtype=torch.long)
    loss = dreambooth_loss(pred, target, t, weights=weights).total
    loss.backward()
    assert pred.grad[..., :4].abs().max() == 0  # no gradient from the masked-out half
    assert pred.grad[..., 4:].abs().min() > 0
    # the weighted mean over the subject's pixels, each image alike
    by_hand = ((pred - target) ** 2)[..., 4:].mean(dim=(1, 2, 3)).mean()
    assert loss.item() == pytest.approx(by_hand.item(), rel=1e-6)
    with torch.no_grad():
        changed = pred.clone()
        changed[..., :4] += 10.0  # anything at all where the mask is 0
        assert dreambooth_loss(changed, target, t, weights=weights).total == loss
        changed[..., 4:] += 0.1  # but the subject counts
        assert dreambooth_loss(changed, target, t, weights=weights).total != loss


def test_ones_weights_are_the_plain_loss_up_to_rounding():
    gen = torch.Generator().manual_seed(1)
    pred, target = (
        torch.randn((3, 4, 8, 8), generator=gen),
        torch.randn((3, 4, 8, 8), generator=gen),
    )
    t = torch.zeros(3, dtype=torch.long)
    plain = dreambooth_loss(pred, target, t).total
    ones = dreambooth_loss(pred, target, t, weights=torch.ones((3, 1, 8, 8))).total
    assert ones.item() == pytest.approx(plain.item(), rel=1e-6)


def test_with_prior_preservation_only_the_instance_rows_are_weighted():
    gen = torch.Generator().manual_seed(2)
    pred, target = (
        torch.randn((4, 4, 8, 8), generator=gen),
        torch.randn((4, 4, 8, 8), generator=gen),
    )
    t = torch.zeros(4, dtype=torch.long)
    weights = torch.zeros((2, 1, 8, 8))
    weights[..., 4:] = 1  # two instance rows, masked; two class rows follow
    loss = dreambooth_loss(pred, target, t, num_instance=2, prior_loss_weight=0.5, weights=weights)
    instance = ((pred[:2] - target[:2]) ** 2)[..., 4:].mean(dim=(1, 2, 3)).mean()
    prior = ((pred[2:] - target[2:]) ** 2).mean()  # the class images count fully
    assert loss.instance.item() == pytest.approx(instance.item(), rel=1e-6)
    assert loss.prior.item() == pytest.approx(prior.item(), rel=1e-6)
    assert loss.total.item() == pytest.approx((instance + 0.5 * prior).item(), rel=1e-6)


# ---------------------------------------------------------------------------------- the files
def test_mask_files_are_not_training_images(tmp_path):
    _masked_folder(tmp_path, [(32, 32), (40, 32)])
    names = [p.name for p in list_image_files(tmp_path / "masked")]
    assert names == ["img0.png", "img1.png"]


def test_the_dataset_check_reports_masks_found_and_bad_masks(tmp_path):
    folder = _masked_folder(tmp_path, [(32, 32), (40, 32)])
    rgba = np.zeros((32, 32, 4), np.uint8)
    rgba[..., 3] = 255
    rgba[:8, :, 3] = 0  # some transparency: the alpha channel is the mask
    Image.fromarray(rgba, "RGBA").save(folder / "alpha.png")
    _image(32, 32, 9).save(folder / "wrong.png")
    Image.new("L", (16, 16), 255).save(folder / "wrong.mask.png")
    _image(32, 32, 10).save(folder / "broken.png")
    (folder / "broken.mask.png").write_bytes(b"not a png")
    Image.new("L", (32, 32), 255).save(folder / "orphan.mask.png")
    lines = check_folder(folder, resolution=32).summary_lines()
    assert "masks for train.masked_loss: 3 (2 .mask.png files, 1 alpha channel)" in lines
    bad = [line for line in lines if "bad mask" in line]
    assert len(bad) == 1, lines
    assert bad[0].startswith("warning: 3 bad masks (")
    assert "broken.mask.png: unreadable" in bad[0]
    assert "orphan.mask.png: no image orphan." in bad[0]
    assert "wrong.mask.png: 16×16 but its image is 32×32" in bad[0]
    assert lines[0].startswith("5 images")  # the masks are not counted as images


def test_check_refuses_a_bad_mask_only_when_masked_loss_is_on(tiny_dir, tmp_path, capsys):
    from tests.enginehelpers import write_config

    folder = _masked_folder(tmp_path, [(32, 32)])
    Image.new("L", (16, 16), 255).save(folder / "img0.mask.png")
    for on in (False, True):
        cfg = write_config(tmp_path, train={"instance_data": str(folder), "masked_loss": on})
        code = cli_main(["check", str(cfg)])
        err = capsys.readouterr().err
        errors = [line for line in err.splitlines() if line.startswith("error:")]
        if on:
            assert code == 2 and len(errors) == 1, err
            assert "img0.mask.png: bad mask: 16×16 but its image is 32×32" in errors[0]
            assert "train.masked_loss: false" in errors[0]
        else:
            assert code == 0 and errors == [], err


def test_training_refuses_a_bad_mask_in_one_line(tiny_dir, tmp_path):
    folder = _masked_folder(tmp_path, [(32, 32)])
    Image.new("L", (32, 32), 0).save(folder / "img0.mask.png")  # all black: no subject
    code, _, events = train_in_process(
        tmp_path, train={**QUIET, "instance_data": str(folder), "masked_loss": True}
    )
    assert code == 2
    (error,) = of_type(events, "error")
    assert error["kind"] == "data" and "img0.mask.png: bad mask: all black" in error["message"]


# ------------------------------------------------------------------- masks follow their views
@pytest.mark.parametrize(
    "train",
    [
        {"center_crop": True, "random_flip": True},
        {"center_crop": False, "random_flip": True},
        {"aspect_buckets": True, "resolution": 64, "random_flip": True},
    ],
    ids=["centre-crop", "random-crops", "buckets"],
)
@pytest.mark.parametrize("cache", [False, True], ids=["drawn", "cached"])
def test_masks_follow_their_images_crops_flips_and_buckets(
    tiny_dir, tmp_path, monkeypatch, train, cache
):
    """Each image's red channel is its mask: whatever view of it the VAE encodes (crop, flip,
    bucket), the loss weights are that view's red channel at latent size."""
    from engine.training import batches as batches_mod

    seen: list[torch.Tensor] = []  # every pixel batch the VAE encodes, in order
    real = batches_mod.latent_distribution

    def spy(vae, pixels):
        seen.append(pixels.detach().float().clone())
        return real(vae, pixels)

    monkeypatch.setattr(batches_mod, "latent_distribution", spy)
    sizes = (
        [(48, 32), (32, 48), (40, 32), (32, 32)]
        if "resolution" not in train
        else [(96, 64), (64, 96), (64, 64), (100, 64)]
    )
    folder = _masked_folder(tmp_path, sizes)
    trainer = _trainer(
        tmp_path,
        instance_data=str(folder),
        cache_latents=cache,
        train_batch_size=2 if "resolution" not in train else 1,
        **train,
    )
    batches = trainer.batches
    assert batches.instances.masks is not None and all(
        m is not None for m in batches.instances.masks
    )
    flipped = 0
    if cache:  # the cache holds, per view, the weights of the pixels it encoded
        calls = iter(seen)
        for key, rows in batches.mask_cache.items():
            encoded = []
            while len(encoded) < len(rows):
                encoded += list(next(calls))
            for row, px in zip(rows, encoded, strict=True):
                expected = _red_weights(px[None], tuple(row.shape[-2:]))[0]
                torch.testing.assert_close(row, expected, atol=1e-5, rtol=0)
            flipped += key.split("/")[1] == "1"
        assert batches.mask_cache.keys() == batches.latent_cache.keys()
    for k in range(6):
        mb = batches.batch(k)
        assert mb.weights is not None and mb.weights.shape[0] == mb.latents.shape[0]
        assert mb.weights.shape[-2:] == mb.latents.shape[-2:]
        if not cache:
            expected = _red_weights(seen[-1], tuple(mb.latents.shape[-2:]))
            torch.testing.assert_close(mb.weights, expected, atol=1e-5, rtol=0)
            # a flipped view's weights are the mirror of an unflipped one's
            flipped += int((mb.weights[..., 0] > mb.weights[..., -1]).any())
    assert flipped, "no flipped view was drawn: the test proves nothing about flips"


# --------------------------------------------------------------------------- in the training
def test_the_loss_does_not_depend_on_the_masked_out_half(tiny_dir, tmp_path):
    """With masks that are 0 on the left half, the UNet's prediction there may be anything:
    the loss (and so the gradient) is the same; its right half counts."""
    folder = _masked_folder(tmp_path, [(32, 32), (32, 32)], half=True)
    trainer = _trainer(tmp_path, instance_data=str(folder), train_batch_size=2)
    mb = trainer.batches.batch(0)
    w = mb.weights.shape[-1]
    assert mb.weights[..., : w // 2].abs().max() == 0
    assert mb.weights[..., w // 2 :].min() == 1
    unet = trainer.models.unet

    def loss_with(change):
        def hook(module, args, output):
            sample = output[0] if isinstance(output, tuple) else output.sample
            change(sample)
            return output

        handle = unet.register_forward_hook(hook)
        try:
            with torch.no_grad():
                return trainer.compute_loss(0).total.item()
        finally:
            handle.remove()

    def nothing(s):
        return None

    def left(s):
        s[..., : w // 2] += 5.0

    def right(s):
        s[..., w // 2 :] += 5.0

    base = loss_with(nothing)
    assert loss_with(left) == base
    assert loss_with(right) != base
    # and the gradient reaching the prediction is zero there
    pred_grad = {}

    def keep_grad(module, args, output):
        sample = output[0] if isinstance(output, tuple) else output.sample
        sample.register_hook(lambda g: pred_grad.setdefault("g", g))

    handle = unet.register_forward_hook(keep_grad)
    try:
        trainer.compute_loss(0).total.backward()
    finally:
        handle.remove()
    g = pred_grad["g"]
    assert g[..., : w // 2].abs().max() == 0 and g[..., w // 2 :].abs().max() > 0


def test_an_all_white_mask_trains_exactly_as_no_mask(tiny_dir, tmp_path):
    folder, plain = tmp_path / "white", tmp_path / "plain"
    for n, size in enumerate([(32, 32), (40, 32)]):
        for where in (folder, plain):
            where.mkdir(exist_ok=True)
            _image(*size, n).save(where / f"img{n}.png")
        Image.new("L", size, 255).save(folder / f"img{n}.mask.png")
    runs = {}
    for name, data, on in (("white", folder, True), ("none", plain, True), ("off", plain, False)):
        code, _, events = train_in_process(
            tmp_path / name,
            train={**QUIET, "instance_data": str(data), "masked_loss": on, "max_train_steps": 2},
        )
        assert code == 0, of_type(events, "error")
        runs[name] = losses(events)
    assert runs["white"] == runs["none"] == runs["off"]
    assert len(runs["white"]) == 2


def test_masks_change_what_is_trained(tiny_dir, tmp_path):
    folder = _masked_folder(tmp_path, [(32, 32), (40, 32)], half=True)
    runs = {}
    for on in (True, False):
        code, _, events = train_in_process(
            tmp_path / str(on),
            train={**QUIET, "instance_data": str(folder), "masked_loss": on, "max_train_steps": 2},
        )
        assert code == 0, of_type(events, "error")
        runs[on] = losses(events)
        logs = [e["message"] for e in of_type(events, "log")]
        if on:
            assert any("masked loss: 2 with a mask, 0 counted fully" in m for m in logs), logs
    assert runs[True][1] != runs[False][1]
