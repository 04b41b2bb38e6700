"""The model-family interface: what differs between Stable Diffusion 1.x/2.x, SDXL, and the next.

A family is one object (a `ModelFamily` subclass, one module each under engine/families/). The
training loop, validation sampling, `generate`, the hub card and the tiny model ask it, and
never branch on the family themselves:

- detection: `matches(index)` and `component_problem(index)` read model_index.json alone;
- the pipeline: `pipeline_class()`, `pipeline(parts, scheduler)`, `pipeline_extras`;
- loading: `load(model, revision) -> Components` (every module, by its pipeline attribute name);
- conditioning: `encode_prompts(parts, prompts, device) -> PromptEmbeds` (cacheable per prompt),
  then `conditioning(embeds, geometry) -> Conditioning`, what the UNet gets besides the noisy
  latents and timesteps (encoder_hidden_states plus `added_cond_kwargs`, e.g. SDXL's pooled
  text embeddings and each image's time ids built from its `SampleGeometry`), and
  `predict(unet, noisy, timesteps, cond)`;
- LoRA: `add_lora` (a `LoraSpec`: rank, alpha, dropout, DoRA, targets), `lora_state_dicts`,
  `lora_metadata`, `save_lora` (the file diffusers' `load_lora_weights` reads);
- weights: `vae_dtype(weight_dtype)` (a VAE that overflows in half precision stays fp32),
  `trained_module_names` (what a full fine-tune checkpoint holds);
- the tiny model builder `build_tiny(folder)` and the hub card's `card_tags`.

Torch-free at import (the registry is read by `check`): torch, diffusers, transformers and peft
are imported inside the methods that use them.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.errors import DreamboothError, exit_code_for
from engine.families.lora import LoraSpec
from engine.runs import LORA_FILE


class ModelLoadError(DreamboothError, RuntimeError):
    """A model that cannot be loaded; `kind` is "config" (bad path, exit 2) or "network" (hub,
    exit 1)."""

    def __init__(self, message: str, kind: str = "config", hint: str = "") -> None:
        super().__init__(message, kind=kind, hint=hint, exit_code=exit_code_for(kind))


@dataclass
class Components:
    """A family's loaded modules, each under its pipeline attribute name ("tokenizer",
    "text_encoder", and "tokenizer_2", "text_encoder_2" for a second encoder)."""

    tokenizers: dict[str, Any]
    text_encoders: dict[str, Any]  # torch modules, in the order the family encodes with them
    vae: Any
    unet: Any
    noise_scheduler: Any  # DDPM, for training
    source: str  # the resolved model path or hub id
    sampler: Any = None  # the pipeline's own scheduler (its class and config), for inference
    family: ModelFamily | None = None  # the family that loaded them

    @property
    def tokenizer(self) -> Any:
        """The first tokenizer (SD 1.x/2.x has only this one)."""
        return next(iter(self.tokenizers.values()))

    @property
    def text_encoder(self) -> Any:
        """The first text encoder (SD 1.x/2.x has only this one)."""
        return next(iter(self.text_encoders.values()))


@dataclass
class SampleGeometry:
    """Where one training image came from, in pixels (height, width): its size before resizing,
    the top-left corner of the crop taken from the resized image, and the size trained at.
    SDXL conditions on all three (its "time ids"); SD 1.x/2.x ignores them."""

    original_size: tuple[int, int]
    crop_top_left: tuple[int, int]
    target_size: tuple[int, int]


@dataclass
class PromptEmbeds:
    """The text encoders' output for a batch of prompts: `hidden` (batch, tokens, dim) is the
    UNet's encoder_hidden_states, `pooled` (batch, dim) the pooled embedding a family may also
    condition on (None where it does not). Rows cache per prompt: `row(i)`, then `stack`."""

    hidden: Any
    pooled: Any = None

    def row(self, i: int) -> PromptEmbeds:
        return PromptEmbeds(self.hidden[i], None if self.pooled is None else self.pooled[i])

    @staticmethod
    def stack(rows: list[PromptEmbeds]) -> PromptEmbeds:
        import torch

        pooled = [r.pooled for r in rows]
        return PromptEmbeds(
            torch.stack([r.hidden for r in rows]),
            None if any(p is None for p in pooled) else torch.stack(pooled),
        )


@dataclass
class Conditioning:
    """Everything the UNet gets besides the noisy latents and the timesteps."""

    hidden_states: Any  # encoder_hidden_states
    added: dict[str, Any] = field(default_factory=dict)  # the UNet's added_cond_kwargs


class ModelFamily(ABC):
    """One model family. Subclasses set the class attributes and the abstract methods; the
    rest (loading by class, the pipeline, LoRA in diffusers' format) is shared."""

    #: Short id (also the value a run or a test may name), e.g. "sd".
    name: str
    #: What users call it, in messages: "Stable Diffusion 1.x/2.x".
    label: str
    #: The diffusers pipeline classes (model_index.json `_class_name`) this family loads.
    pipeline_classes: tuple[str, ...]
    #: model_index.json component -> the class names accepted (None: any class).
    component_classes: dict[str, tuple[str, ...] | None]
    #: A public model of this family, for messages.
    example: str
    #: Keyword arguments the pipeline constructor and from_pretrained get besides the modules.
    pipeline_extras: dict[str, Any] = {}
    #: The ones `generate` passes to from_pretrained (SD keeps a model's own safety checker
    #: there, as it always has; a family whose pipeline must match validation samples exactly
    #: names here what `pipeline_extras` switches off).
    generate_extras: dict[str, Any] = {}
    #: Hub model-card tags naming the family.
    card_tags: tuple[str, ...] = ()
    #: The builtin model names (engine.sources) whose tiny model `build_tiny` builds.
    builtin_models: tuple[str, ...] = ()
    #: Whether `conditioning` reads each sample's SampleGeometry (the trainer skips it if not).
    conditions_on_geometry: bool = False
    #: What `train.aspect_buckets: auto` means for this family (SDXL was trained with buckets).
    aspect_buckets_default: bool = False

    # ------------------------------------------------------------------ detection
    def matches(self, index: dict[str, Any]) -> bool:
        """Whether model_index.json names one of this family's pipelines."""
        return str(index.get("_class_name") or "") in self.pipeline_classes

    def component_problem(self, index: dict[str, Any]) -> str | None:
        """Why a pipeline of this family cannot be trained (a component of another class), as
        the end of a sentence that starts with the model's name; None when it can."""
        for name, classes in self.component_classes.items():
            entry = index.get(name)
            got = entry[1] if isinstance(entry, list) and len(entry) == 2 else None
            if got is None or (classes is not None and got not in classes):
                want = "/".join(classes) if classes else "a scheduler"
                return (
                    f"has {name} {got or 'missing'} where {self.description} has {want}; pick "
                    f"a standard {self.short_label} model, e.g. '{self.example}'"
                )
        return None

    @property
    def description(self) -> str:
        """ "Stable Diffusion 1.x/2.x (StableDiffusionPipeline)"."""
        return f"{self.label} ({'/'.join(self.pipeline_classes)})"

    @property
    def short_label(self) -> str:
        return self.label.replace("Stable Diffusion", "SD")

    # ------------------------------------------------------------------ the pipeline
    def pipeline_class(self) -> Any:
        """The diffusers pipeline class (the first of `pipeline_classes`)."""
        import diffusers

        return getattr(diffusers, self.pipeline_classes[0])

    def pipeline(self, parts: Components, scheduler: Any) -> Any:
        """A pipeline around already-loaded modules (validation samples, final/), with
        `scheduler` for inference."""
        pipe = self.pipeline_class()(
            **parts.tokenizers,
            **parts.text_encoders,
            vae=parts.vae,
            unet=parts.unet,
            scheduler=scheduler,
            **self.pipeline_extras,
        )
        pipe.set_progress_bar_config(disable=True)
        return pipe

    # ------------------------------------------------------------------ loading
    @abstractmethod
    def module_classes(self) -> dict[str, Any]:
        """Pipeline attribute name -> the class that loads it from its subfolder, for the
        tokenizers, text encoders, "vae" and "unet" (imported here: torch-heavy)."""

    def load(self, model: str, revision: str | None = None) -> Components:
        """Every module of `model` (a hub id, a local folder or builtin:tiny), for training."""
        from diffusers import DDPMScheduler

        from engine.sources import resolve_model

        source = resolve_model(model)
        loaded = {
            name: self._from_pretrained(cls, source, name, revision)
            for name, cls in self.module_classes().items()
        }
        noise_scheduler = self._from_pretrained(DDPMScheduler, source, "scheduler", revision)
        return Components(
            tokenizers={n: m for n, m in loaded.items() if n.startswith("tokenizer")},
            text_encoders={n: m for n, m in loaded.items() if n.startswith("text_encoder")},
            vae=loaded["vae"],
            unet=loaded["unet"],
            noise_scheduler=noise_scheduler,
            source=source,
            sampler=pipeline_scheduler(source, revision) or noise_scheduler,
            family=self,
        )

    def _from_pretrained(self, cls: Any, source: str, subfolder: str, revision: str | None) -> Any:
        from engine.sources import is_local_path

        try:
            return cls.from_pretrained(source, subfolder=subfolder, revision=revision)
        except OSError as exc:
            if is_local_path(source) or Path(source).exists():
                folders = ", ".join(f"{n}/" for n in self.component_classes)
                raise ModelLoadError(
                    f"{source}: cannot load '{subfolder}' ({exc.__class__.__name__})",
                    hint=f"the folder must be a diffusers {self.loader_noun} pipeline "
                    f"(model_index.json with {folders})",
                ) from exc
            raise ModelLoadError(
                f"cannot download '{source}' from the Hugging Face Hub",
                kind="network",
                hint="check the network (and HF_HUB_OFFLINE), the model id and revision, "
                "or use a local diffusers folder",
            ) from exc

    #: The family's name in a load error's hint ("a diffusers Stable Diffusion pipeline").
    loader_noun: str = "Stable Diffusion"

    def vae_dtype(self, weight_dtype: Any) -> Any:
        """The dtype the frozen VAE runs in (a VAE that overflows in fp16 overrides this)."""
        return weight_dtype

    @property
    def trained_module_names(self) -> tuple[str, ...]:
        """The pipeline attributes a full fine-tune trains (and its checkpoints hold)."""
        return ("unet", *(n for n in self.component_classes if n.startswith("text_encoder")))

    # ------------------------------------------------------------------ conditioning
    @abstractmethod
    def encode_prompts(self, parts: Components, prompts: list[str], device: Any) -> PromptEmbeds:
        """The text encoders' output for `prompts` (gradients flow when the caller allows)."""

    @abstractmethod
    def conditioning(
        self, embeds: PromptEmbeds, geometry: list[SampleGeometry] | None = None
    ) -> Conditioning:
        """What the UNet is conditioned on for a batch: the prompts' embeddings plus any added
        conditioning built from each sample's geometry (one per row of `embeds`)."""

    def predict(self, unet: Any, noisy: Any, timesteps: Any, cond: Conditioning) -> Any:
        """The UNet's prediction for noisy latents at `timesteps` under `cond`."""
        return unet(
            noisy,
            timesteps,
            cond.hidden_states,
            added_cond_kwargs=cond.added or None,
            return_dict=False,
        )[0]

    # ------------------------------------------------------------------ LoRA
    def add_lora(self, unet: Any, spec: LoraSpec, text_encoders: dict[str, Any]) -> None:
        """Attach LoRA adapters (engine.families.lora: rank, alpha, dropout, DoRA, target
        modules) to the UNet and to each text encoder given (maybe none)."""
        from engine.families.lora import add_lora_adapters

        add_lora_adapters(unet, spec, list(text_encoders.values()))

    def lora_state_dicts(self, unet: Any, text_encoders: dict[str, Any]) -> dict[str, Any]:
        """The adapters' weights, as the pipeline's save_lora_weights takes them
        (`unet_lora_layers`, `text_encoder_lora_layers`, `text_encoder_2_lora_layers`...), in
        the names engine.families.lora.adapter_weights gives them."""
        from engine.families.lora import adapter_weights

        modules = {"unet": unet, **text_encoders}
        return {
            f"{name}_lora_layers": adapter_weights(m, text=name != "unet")
            for name, m in modules.items()
        }

    def lora_metadata(self, unet: Any, text_encoders: dict[str, Any]) -> dict[str, Any]:
        """The adapters' peft configs (rank, alpha, target modules, DoRA...) for the file's
        metadata.

        Without them a loader assumes alpha = rank (a LoRA trained with lora_alpha != lora_rank
        would reload with a different strength than the one trained and sampled), plain LoRA
        and the modules it finds weights for.
        """
        from engine.families.lora import adapter_metadata

        modules = {"unet": unet, **text_encoders}
        return {f"{name}_lora_adapter_metadata": adapter_metadata(m) for name, m in modules.items()}

    def save_lora(self, folder: Path, unet: Any, text_encoders: dict[str, Any]) -> Path:
        """pytorch_lora_weights.safetensors in diffusers' format, with the adapter metadata that
        `load_lora_weights` reads back (diffusers >= 0.35)."""
        self.pipeline_class().save_lora_weights(
            folder,
            safe_serialization=True,
            **self.lora_state_dicts(unet, text_encoders),
            **self.lora_metadata(unet, text_encoders),
        )
        return Path(folder) / LORA_FILE

    # ------------------------------------------------------------------ the tiny model
    @abstractmethod
    def build_tiny(self, folder: Path) -> None:
        """Write a tiny diffusers pipeline folder of this family, from a fixed seed, offline."""


def pipeline_scheduler(source: str, revision: str | None = None) -> Any:
    """The scheduler as the pipeline's `from_pretrained(source)` loads it (the class
    model_index.json names, its own config), or None where it cannot be read.

    final/ saves it and validation samples derive their sampler from its config, exactly as
    `generate` derives its sampler from a loaded pipeline's: same sampler config, same images.
    """
    import diffusers
    from diffusers import DiffusionPipeline

    try:
        index = DiffusionPipeline.load_config(source, revision=revision)
        cls = getattr(diffusers, index["scheduler"][1])
        return cls.from_pretrained(source, subfolder="scheduler", revision=revision)
    except Exception:  # no model_index.json or an unknown class: the DDPM config serves
        return None
