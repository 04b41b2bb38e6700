"""Will it fit, how long will it take: a run's peak GPU memory and time, before training.

Torch-free (the TUI may show it). Parameter counts are read from the model's own weight files:
the JSON header of each component's `.safetensors` file lists every tensor's shape, so counting
needs no torch and no weights in memory (a Hub model: its files in the Hub cache).

The memory model follows what engine/training/setup.py puts on the GPU:

- **weights**: full fine-tune keeps the trained UNet (and text encoder) in fp32 (mixed precision
  is autocast); LoRA keeps the frozen UNet in the weight dtype and its adapters in fp32. Frozen
  encoders (VAE, text encoders not trained) sit on the GPU unless `cache_latents` moved them to
  the CPU after encoding (engine/training/batches.py). An EMA on the GPU is one more fp32 copy.
- **gradients**: fp32, one per trained parameter.
- **optimizer**: AdamW 8 bytes per trained parameter (two fp32 moments); 8-bit AdamW 2
  (bitsandbytes' two 8-bit moments); Prodigy 16 (exp_avg, exp_avg_sq, s, p0: prodigyopt).
- **activations**: what the forward pass keeps for the backward, ~ batch x pixels. Gradient
  checkpointing's saving is not modelled (see CHECKPOINT_NOTE): with it on, this term is an
  upper bound.

The gradients appear while the backward frees the activations (and, under mixed precision,
autocast's half-precision copies of the fp32 weights), so the peak is the static part plus the
larger of the two: `weights + optimizer + max(gradients, activations + autocast copies)`.

Calibration: one measured peak, LoRA rank 4 on the SD1.5 architecture at 512 px, batch 1, bf16
(benchmarks/results/h200-lora_r4.json): what it holds beyond its weights is the activation term.
The two other H200 measurements (full AdamW; 8-bit AdamW + checkpointing) are the hold-out that
tests/test_estimate.py checks the model against. Other UNets, resolutions and batches are
extrapolations from that one point, and the estimate says so.

engine/fit.py turns an estimate into the lines `check` and the Config screen show.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

GIB = 2**30

# --- the measurements (benchmarks/RESULTS.md; tests/test_estimate.py checks these against the
# JSON files they are read from) ---
#: SD1.5 architecture's UNet parameters (benchmarks/RESULTS.md, sd15_arch.py).
SD15_UNET_PARAMS = 859_520_964
#: LoRA rank 4 on its to_q/to_k/to_v/to_out.0: per transformer block r*(14d + 2*768) for the
#: block width d, 5 blocks at 320, 5 at 640, 6 at 1280 channels.
SD15_LORA_R4_PARAMS = 797_184
#: engine.peak_mem of h200-lora_r4.json (bytes): LoRA r4, 512 px, batch 1, bf16, cached latents.
CALIBRATION_PEAK = 2_991_479_808
CALIBRATION_PIXELS = 512 * 512
#: engine.step_ms of the three H200 runs (SD1.5 arch, 512 px, batch 1, bf16).
H200_STEP_S = {
    "full": 0.1692437869999992,
    "full_ckpt": 0.2794261119999959,
    "lora": 0.13943105800001376,
}
#: Gradient checkpointing's saving is not modelled: no measurement here can check it. The one
#: measured peak with checkpointing (h200-full_adamw8bit_ckpt.json) is set by the gradients
#: (3.2 GiB against 2.8 GiB of activations even without checkpointing), so it reads the same
#: whatever checkpointing keeps. With it on, the activation term is the one without it: an upper
#: bound on that term (the peak itself is still the model's, 3.6% low on that run).
CHECKPOINT_NOTE = "activations: upper bound with gradient checkpointing"

#: (method, optimizer, gradient_checkpointing) of the three H200 runs -> H200_STEP_S key (the
#: LoRA run: rank 4 on the attention projections, no DoRA).
MEASURED_SETUPS = {
    ("lora", "adamw", False): "lora",
    ("full", "adamw", False): "full",
    ("full", "adamw8bit", True): "full_ckpt",
}
OPTIMIZER_BYTES = {"adamw": 8, "adamw8bit": 2, "prodigy": 16}
TEXT_ENCODERS = ("text_encoder", "text_encoder_2")
#: The largest JSON header the safetensors format allows (100 MB).
MAX_HEADER = 100_000_000


@dataclass
class Counts:
    """Parameters of one component, and per train.lora_targets set what its LoRA adds:
    (parameters per unit of rank, DoRA's magnitudes: one per adapted output)."""

    params: int
    lora: dict[str, tuple[int, int]] = field(default_factory=dict)

    def lora_params(self, targets: str, rank: int, dora: bool) -> int:
        per_rank, outputs = self.lora.get(targets, (0, 0))
        return per_rank * rank + (outputs if dora else 0)


def header_shapes(path: Path) -> dict[str, list[int]]:
    """Tensor name -> shape from a .safetensors file's JSON header (no tensor is read); a
    ValueError naming the file where it is not one (OSError where it cannot be read)."""
    with open(path, "rb") as f:
        head = f.read(8)
        size = struct.unpack("<Q", head)[0] if len(head) == 8 else 0
        if not 2 <= size <= MAX_HEADER:
            raise ValueError(f"{path}: not a .safetensors file (header size {size})")
        try:
            header = json.loads(f.read(size))
            return {k: v["shape"] for k, v in header.items() if k != "__metadata__"}
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise ValueError(f"{path}: not a .safetensors file ({exc})") from None


def _numel(shape: list[int]) -> int:
    n = 1
    for s in shape:
        n *= s
    return n


def count_shapes(shapes: dict[str, list[int]], text: bool) -> Counts:
    """A component's counts; a LoRA on a weight [out, in, *kernel] adds rank x (in x kernel +
    out) parameters (A: in -> rank with the kernel, B: rank -> out)."""
    from engine.families.lora import TARGETS

    lora = {}
    for name, (unet_targets, text_targets) in TARGETS.items():
        targets = text_targets if text else unet_targets
        adapted = [
            s
            for key, s in shapes.items()
            if len(s) >= 2 and any(key.endswith(f".{t}.weight") for t in targets)
        ]
        lora[name] = (sum(_numel(s[1:]) + s[0] for s in adapted), sum(s[0] for s in adapted))
    return Counts(sum(_numel(s) for s in shapes.values()), lora)


def _component_files(folder: Path) -> list[Path]:
    for stem in ("diffusion_pytorch_model", "model"):
        for variant in ("", ".fp16"):
            single = folder / f"{stem}{variant}.safetensors"
            if single.is_file():
                return [single]
            index = folder / f"{stem}{variant}.safetensors.index.json"
            if index.is_file():
                try:
                    shards = set(json.loads(index.read_text())["weight_map"].values())
                except (ValueError, TypeError, KeyError, AttributeError) as exc:
                    raise ValueError(f"{index}: not a safetensors index ({exc})") from None
                return [folder / s for s in sorted(shards)]
    return []


def model_folder(model: str, revision: str | None = None) -> Path | None:
    """The model's folder on this machine: a local path, a built builtin, or the Hub cache's
    snapshot (nothing is downloaded)."""
    from engine.sources import builtin_model_path, is_builtin

    if is_builtin(model):
        path = builtin_model_path(model)
        return path if path.is_dir() else None
    path = Path(model).expanduser()
    if path.is_dir():
        return path
    try:
        from huggingface_hub import try_to_load_from_cache

        found = try_to_load_from_cache(model, "model_index.json", revision=revision)
    except Exception:
        return None
    return Path(found).parent if isinstance(found, str) else None


def read_counts(folder: Path) -> dict[str, Counts] | None:
    """Counts per component (unet, vae, text_encoder[_2]); None where the UNet's or VAE's
    weights are not safetensors files in the folder."""
    out: dict[str, Counts] = {}
    for name in ("unet", "vae", *TEXT_ENCODERS):
        files = _component_files(folder / name)
        if not files:
            if name in ("unet", "vae"):
                return None
            continue
        shapes: dict[str, list[int]] = {}
        for f in files:
            shapes.update(header_shapes(f))
        out[name] = count_shapes(shapes, text=name != "unet")
    return out


_COUNTS: dict[tuple[Path, int], dict[str, Counts] | None] = {}


def cached_counts(folder: Path) -> dict[str, Counts] | None:
    """read_counts(folder), read once per folder while its unet/ folder is unchanged (the app
    asks again on every edit of the form)."""
    try:
        key = (folder.resolve(), (folder / "unet").stat().st_mtime_ns)
    except OSError:
        return None
    if key not in _COUNTS:
        _COUNTS[key] = read_counts(folder)
    return _COUNTS[key]


@dataclass
class Estimate:
    weights: int  # bytes: trained (fp32) + frozen weights on the GPU (+ an EMA copy)
    gradients: int
    optimizer: int
    activations: int  # activations (+ autocast's half-precision weight copies)
    seconds_per_step: float | None  # on an H200 only
    step_basis: str  # "measured" or "extrapolated"
    notes: list[str] = field(default_factory=list)  # what is extrapolated
    #: gradient checkpointing is on: the activation term is the one without it (CHECKPOINT_NOTE)
    activations_bound: bool = False

    @property
    def peak(self) -> int:
        return self.weights + self.optimizer + max(self.gradients, self.activations)


def _calibrated_activations() -> int:
    """The LoRA calibration run's bytes beyond its weights, adapters and their AdamW states
    (what `Estimate.peak` adds as the larger of gradients and activations)."""
    static = SD15_UNET_PARAMS * 2 + SD15_LORA_R4_PARAMS * (4 + 8)
    return CALIBRATION_PEAK - static


def estimate(cfg: Any, counts: dict[str, Counts]) -> Estimate:
    """The peak GPU memory (bytes) and H200 step time of the run `cfg` describes."""
    tc = cfg.train
    half = tc.mixed_precision in ("fp16", "bf16")
    wb = 2 if half else 4
    lora = tc.method == "lora"
    unet = counts["unet"]
    first_te = next((counts[n] for n in TEXT_ENCODERS if n in counts), None)
    trained_te = first_te if tc.train_text_encoder and first_te else None
    notes: list[str] = []

    if lora:
        spec = (tc.lora_targets, tc.lora_rank, tc.use_dora)
        trained = unet.lora_params(*spec) + (trained_te.lora_params(*spec) if trained_te else 0)
        if tc.use_dora:
            notes.append("DoRA's extra activations not counted")
        frozen_trainee = (unet.params + (trained_te.params if trained_te else 0)) * wb
        weights = frozen_trainee + trained * 4
    else:
        trained = unet.params + (trained_te.params if trained_te else 0)
        weights = trained * 4
    # the frozen encoders: on the CPU after encoding when latents are cached (on a GPU)
    frozen_tes = [counts[n] for n in TEXT_ENCODERS if n in counts and counts[n] is not trained_te]
    if not tc.cache_latents:
        weights += counts["vae"].params * (4 if _is_sdxl(counts) else wb)
        weights += sum(c.params for c in frozen_tes) * wb
    elif trained_te:  # only the VAE leaves (Models.frozen_encoders)
        weights += sum(c.params for c in frozen_tes) * wb
    if tc.ema_decay is not None and tc.ema_device == "gpu":
        weights += trained * 4
    gradients = trained * 4
    optimizer = trained * OPTIMIZER_BYTES.get(tc.optimizer, 8)

    images = tc.train_batch_size * (2 if tc.prior_preservation else 1)
    pixel_ratio = tc.resolution**2 / CALIBRATION_PIXELS
    size_ratio = unet.params / SD15_UNET_PARAMS
    if abs(size_ratio - 1) > 0.01:
        notes.append("activations and time extrapolated from the SD1.5 UNet by UNet size")
    if tc.resolution != 512 or images != 1:
        notes.append("activations scaled from 512 px, batch 1 by pixels x batch")
    activations = _calibrated_activations() * images * pixel_ratio * size_ratio
    if not lora and half:  # autocast caches a half-precision copy of each fp32 weight
        activations += trained * 2
    if trained_te:
        notes.append("text encoder activations not counted")

    key = "lora" if lora else ("full_ckpt" if tc.gradient_checkpointing else "full")
    work = images * tc.gradient_accumulation_steps * pixel_ratio * size_ratio
    setup = (tc.method, tc.optimizer, tc.gradient_checkpointing)
    plain_lora = tc.lora_rank == 4 and tc.lora_targets == "attention" and not tc.use_dora
    same = MEASURED_SETUPS.get(setup) == key and (plain_lora or not lora)
    measured = same and tc.mixed_precision == "bf16" and abs(work - 1) < 0.01 and not trained_te
    seconds = H200_STEP_S[key] * work
    return Estimate(
        int(weights),
        int(gradients),
        int(optimizer),
        int(activations),
        seconds,
        "measured" if measured else "scaled from the closest measured step",
        notes,
        tc.gradient_checkpointing,
    )


def _is_sdxl(counts: dict[str, Counts]) -> bool:
    return "text_encoder_2" in counts  # its VAE stays fp32 (engine/families/sdxl.py)
