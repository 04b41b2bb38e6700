"""The typed config (pydantic v2): its three sections, every key's type, default and help text
(field order = DESIGN.md's order, which is the order files are written in)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from engine.config.field_types import (
    AutoSwitch,
    Beta,
    Bool,
    Dropout,
    NonNegFloat,
    NonNegInt,
    OptDecay,
    OptPosFloat,
    OptPosInt,
    OptSize,
    OptStr,
    PosFloat,
    PosInt,
    Prompts,
    Resolution,
    Str,
    Text,
    choice_list,
    enum_of,
)
from engine.schedulers import SCHEDULERS

#: The schedulers of ``diffusers.optimization`` (hard-coded: this module must not import diffusers).
LR_SCHEDULERS = (
    "linear",
    "cosine",
    "cosine_with_restarts",
    "polynomial",
    "constant",
    "constant_with_warmup",
    "piecewise_constant",
)
METHODS = ("full", "lora")
#: Which modules LoRA adapts (engine.families.lora names the modules of each set).
LORA_TARGETS = ("attention", "attention+ff", "all")
OPTIMIZERS = ("adamw", "adamw8bit", "prodigy")
MIXED_PRECISIONS = ("no", "fp16", "bf16")
EMA_DEVICES = ("gpu", "cpu")
EVAL_SCHEDULERS = SCHEDULERS  # the samplers (engine.schedulers names them)
REPORT_TO = ("none", "tensorboard", "wandb")  # train.report_to (engine.training.report_to)
EXPORT_FORMATS = ("kohya", "single-file")  # what `train.export` may write (engine.export)

SECTIONS = ("train", "evaluation", "hub")
TUTORIAL_SECTIONS = ("train_params", "eval_params")

Method = enum_of(METHODS)
LoraTargets = enum_of(LORA_TARGETS)
Optimizer = enum_of(OPTIMIZERS)
MixedPrecision = enum_of(MIXED_PRECISIONS, false_means="no")
LrScheduler = enum_of(LR_SCHEDULERS)
EmaDevice = enum_of(EMA_DEVICES)
EvalScheduler = enum_of(EVAL_SCHEDULERS)
ExportFormats = choice_list(EXPORT_FORMATS)
ReportTo = enum_of(REPORT_TO, false_means="none")


DEFAULT_LEARNING_RATES = {"full": 5.0e-6, "lora": 1.0e-4}
#: Prodigy finds its own step size; learning_rate multiplies it (its authors recommend 1.0).
PRODIGY_LEARNING_RATE = 1.0

# Keys earlier versions wrote (run directories keep their config.yaml): accepted and ignored.
RETIRED_KEYS = {
    ("train", "dataloader_num_workers"): "images are decoded once into memory",
}


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", protected_namespaces=())


class TrainConfig(_Section):
    """The ``train:`` section."""

    @model_validator(mode="before")
    @classmethod
    def _default_learning_rate(cls, data: Any) -> Any:
        """An unset learning rate follows the method: 5e-6 full fine-tune, 1e-4 LoRA; 1.0 with
        the prodigy optimizer, whatever the method."""
        if isinstance(data, dict) and data.get("learning_rate") is None:
            method = str(data.get("method") or "full").lower()
            if str(data.get("optimizer") or "").strip().lower() == "prodigy":
                data = {**data, "learning_rate": PRODIGY_LEARNING_RATE}
            elif method in ("full", "lora"):
                data = {**data, "learning_rate": DEFAULT_LEARNING_RATES[method]}
        return data

    model: Text = Field(
        description=(
            "Base model: a hub id, a local diffusers folder, builtin:tiny, builtin:tiny-shapes "
            "(the demo's, pre-trained on shapes) or builtin:tiny-sdxl."
        )
    )
    revision: OptStr = Field(None, description="Hub revision (branch, tag or commit) of the model.")
    instance_data: Text = Field(
        description="Your concept's images: a folder, a hub dataset id, or builtin:tiny."
    )
    instance_prompt: Text = Field(
        description="Prompt naming your concept with a rare token, e.g. 'a photo of sks dog'."
    )
    captions: Bool = Field(
        False, description="Use per-image .txt captions, where present, instead of the prompt."
    )
    caption_dropout: Dropout = Field(
        0.0,
        description="Probability (0 to <1) of training an instance image on the empty prompt "
        "instead of its prompt or caption, so the concept also appears without its token; "
        "0: off.",
    )
    prior_preservation: Bool = Field(
        False, description="Also train on class images so the class keeps its general look."
    )
    class_data: OptStr = Field(
        None, description="Folder of class images, filled up to num_class_images by generating."
    )
    class_prompt: Text = Field(
        "a photo of dog", description="Prompt for the class images (the class, no rare token)."
    )
    num_class_images: PosInt = Field(
        100, description="How many class images prior preservation uses."
    )
    sample_batch_size: PosInt = Field(4, description="Batch size when generating class images.")
    prior_loss_weight: NonNegFloat = Field(
        1.0, description="Weight of the class-image (prior) loss."
    )
    resolution: Resolution = Field(
        512, description="Training image size in pixels (a multiple of 8)."
    )
    center_crop: Bool = Field(
        True, description="Crop images at the centre (false: at a random place)."
    )
    random_flip: Bool = Field(False, description="Flip images left-right at random.")
    aspect_buckets: AutoSwitch = Field(
        "auto",
        description="auto: on for SDXL, off for SD 1.x/2.x (as each was trained); on: train "
        "each image at its own aspect ratio: buckets of about resolution^2 "
        "pixels (sides multiples of 64 for SD and SDXL, up to 2:1), each image resized to cover its bucket "
        "(never enlarged more than 2x: smaller images are skipped) and cropped to it (centre, or "
        "at random with center_crop: false); each "
        "batch from one bucket. Class images (prior preservation) are bucketed the same way: "
        "made at the buckets' sizes in proportion to the instance images.",
    )
    shuffle: Bool = Field(True, description="Shuffle the training images every epoch.")
    method: Method = Field(
        "full", description="full: fine-tune all UNet weights; lora: train small adapters."
    )
    lora_rank: PosInt = Field(4, description="LoRA rank (adapter size); used by method lora.")
    lora_alpha: PosInt = Field(4, description="LoRA alpha; the update is scaled by alpha / rank.")
    lora_dropout: Dropout = Field(
        0.0, description="Dropout (0 to <1) on the LoRA adapters' input while training; 0: off."
    )
    use_dora: Bool = Field(
        False,
        description="DoRA: LoRA plus a trained magnitude per output (often better at low rank, "
        "slower steps); method lora only. Not exportable to kohya.",
    )
    lora_targets: LoraTargets = Field(
        "attention",
        description="Modules LoRA adapts: attention (the attention projections), attention+ff "
        "(+ feed-forward layers; the text encoder's MLPs), all (+ the UNet's convolutions, "
        "LoCon); method lora only.",
    )
    train_text_encoder: Bool = Field(
        False,
        description="Fine-tune the text encoders too (SDXL: both; more memory, often better faces).",
    )
    max_train_steps: PosInt = Field(400, description="Number of optimizer updates to train for.")
    train_batch_size: PosInt = Field(1, description="Images per batch on each GPU.")
    gradient_accumulation_steps: PosInt = Field(
        1, description="Batches added up before each optimizer update."
    )
    learning_rate: PosFloat = Field(
        5.0e-6,
        description="Learning rate of the optimizer (when unset: 5e-6 for full, 1e-4 for lora; "
        "1.0 for prodigy, where it multiplies the step size Prodigy finds).",
    )
    text_encoder_lr: OptPosFloat = Field(
        None,
        description="Learning rate of the text encoder when it is trained (null: learning_rate).",
    )
    lr_scheduler: LrScheduler = Field(
        "constant", description="How the learning rate changes over training."
    )
    lr_warmup_steps: NonNegInt = Field(
        0, description="Updates over which the learning rate ramps up from 0."
    )
    lr_num_cycles: PosInt = Field(
        1, description="Restarts of cosine_with_restarts (its number of cosine cycles)."
    )
    lr_power: PosFloat = Field(1.0, description="Power of the polynomial decay (1.0: linear).")
    lr_step_rules: OptStr = Field(
        None,
        description="piecewise_constant's rules, e.g. '1:100,0.1:300,0.01' (x1 before step "
        "100, x0.1 before 300, then x0.01).",
    )
    optimizer: Optimizer = Field(
        "adamw",
        description="adamw; adamw8bit (bitsandbytes, less memory); prodigy (prodigyopt: finds "
        "its own step size, learning_rate 1.0; takes the adam_* keys too).",
    )
    adam_beta1: Beta = Field(
        0.9, description="AdamW's beta1: how long gradients are averaged (momentum); 0 <= x < 1."
    )
    adam_beta2: Beta = Field(
        0.999, description="AdamW's beta2: how long squared gradients are averaged; 0 <= x < 1."
    )
    adam_weight_decay: NonNegFloat = Field(
        1.0e-2, description="AdamW's decoupled weight decay (pulls weights toward 0); 0: off."
    )
    adam_epsilon: PosFloat = Field(
        1.0e-8, description="AdamW's epsilon, added to the update's denominator for stability."
    )
    max_grad_norm: PosFloat = Field(1.0, description="Gradients are clipped to this norm.")
    ema_decay: OptDecay = Field(
        None,
        description="Keep an EMA (moving average) of the trained weights with this decay, e.g. "
        "0.999; samples, final/ and exports use it. It ramps up as (1+n)/(10+n) over the first "
        "updates. null: off.",
    )
    ema_device: EmaDevice = Field(
        "gpu",
        description="Where the EMA weights live: gpu (beside the weights; the CPU if there is no "
        "GPU) or cpu (no GPU memory; the weights are copied out after each update).",
    )
    mixed_precision: MixedPrecision = Field(
        "no", description="no (fp32), fp16 or bf16 mixed precision."
    )
    gradient_checkpointing: Bool = Field(
        False, description="Recompute activations in the backward pass: less memory, slower."
    )
    cache_latents: Bool = Field(
        True, description="Encode images and frozen text embeddings once, before training."
    )
    torch_compile: Bool = Field(
        False,
        description="torch.compile the UNet's repeated blocks: the first step compiles (cached "
        "for later runs of the same model and shapes), then faster steps.",
    )
    snr_gamma: OptPosFloat = Field(
        None, description="Min-SNR loss weighting gamma (5.0 is usual); null: off."
    )
    offset_noise: NonNegFloat = Field(
        0.0, description="Offset noise strength (0.1 helps very dark/bright images); 0: off."
    )
    masked_loss: Bool = Field(
        False,
        description="Count only the subject in the loss: an instance image's mask is the "
        "<name>.mask.png beside it (white = subject, its image's size) or else its alpha "
        "channel; images without one count fully.",
    )
    seed: NonNegInt = Field(42, description="Random seed for training.")
    checkpointing_steps: PosInt = Field(
        500, description="Save a resumable checkpoint every N updates."
    )
    checkpoints_total_limit: OptPosInt = Field(
        2, description="Keep at most this many checkpoints (null: keep all)."
    )
    validation_steps: PosInt = Field(
        100, description="Generate sample images from evaluation.prompts every N updates."
    )
    validation_at_start: bool = Field(
        False,
        description=(
            "Also make samples before the first update (step 0): what the model drew before "
            "training, to compare the run's samples against. Not on a resume."
        ),
    )
    num_processes: PosInt = Field(
        1, description="GPUs to train on; more than 1 launches through accelerate."
    )
    output_dir: Text = Field("runs", description="Folder that holds the run directories.")
    run_name: OptStr = Field(
        None, description="Name used in the run id (default: from the instance prompt)."
    )
    report_to: ReportTo = Field(
        "none",
        description="Also record loss, lr, grad norm, memory and sample images for a tracker, "
        "in the run folder: tensorboard (RUN_DIR/tensorboard/) or wandb (RUN_DIR/wandb/, "
        "offline unless WANDB_MODE=online); none: off. pip install tensorboard / wandb.",
    )
    export: ExportFormats = Field(
        default_factory=list,
        description="Also write these next to final/ when the run ends (RUN_DIR/exports/, fp16): "
        "kohya (a LoRA run's LoRA for AUTOMATIC1111/ComfyUI), single-file (one original-layout "
        ".safetensors; a LoRA run's is fused into its base). [] for none.",
    )


class EvaluationConfig(_Section):
    """The ``evaluation:`` section: sample images during training, and generation defaults."""

    prompts: Prompts = Field(
        default_factory=lambda: ["a photo of sks dog on the beach"],
        description="Prompts for the sample images (a list, or one prompt).",
    )
    negative_prompt: Str = Field("", description="What the images should not show.")
    num_images: PosInt = Field(4, description="Images per prompt.")
    num_inference_steps: PosInt = Field(25, description="Denoising steps per image.")
    guidance_scale: NonNegFloat = Field(
        7.5, description="How strongly images follow the prompt (1: no guidance)."
    )
    seed: NonNegInt = Field(0, description="Random seed for sampling (same seed, same images).")
    scheduler: EvalScheduler = Field(
        SCHEDULERS[0],
        description=f"Sampler: {', '.join(SCHEDULERS[:-1])} or {SCHEDULERS[-1]}.",
    )
    height: OptSize = Field(
        None, description="Image height, a multiple of 8 (null: the training resolution)."
    )
    width: OptSize = Field(
        None, description="Image width, a multiple of 8 (null: the training resolution)."
    )
    output_dir: Text = Field("images", description="Folder for images made by generate.")


class HubConfig(_Section):
    """The ``hub:`` section. The token is never stored here: it comes from HF_TOKEN or the login."""

    model_repo: OptStr = Field(
        None, description="Hub repo id to push the trained model to, e.g. 'you/sks-dog'."
    )
    dataset_repo: OptStr = Field(
        None, description="Hub dataset repo id to push the instance images to."
    )
    private: Bool = Field(True, description="Create the hub repos as private.")


class Config(BaseModel):
    """A whole config file: ``train`` (required), ``evaluation`` and ``hub``."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    train: TrainConfig = Field(description="What to train on and how.")
    evaluation: EvaluationConfig = Field(
        default_factory=EvaluationConfig, description="Sample images and generation settings."
    )
    hub: HubConfig = Field(default_factory=HubConfig, description="Hugging Face Hub repos.")


#: The keys a ``train:`` section must have (the fields without a default).
REQUIRED_TRAIN_KEYS = tuple(k for k, f in TrainConfig.model_fields.items() if f.is_required())

SECTION_MODELS: dict[str, type[_Section]] = {
    "train": TrainConfig,
    "evaluation": EvaluationConfig,
    "hub": HubConfig,
}


def config_to_dict(cfg: Config) -> dict:
    """The config as a plain, JSON-able dict in this app's format (DESIGN order)."""
    return cfg.model_dump(mode="json")
