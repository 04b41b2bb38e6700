"""The model card of a pushed run: its metadata, training table, samples and usage snippets.

What a public card says about the base model never includes this machine's paths.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine import __version__
from engine.runs import LORA_FILE
from engine.sources import public_base_model

SAMPLES_FILE = "samples.png"

_LICENSES = (
    # (hub id or id prefix, license) for the base models this app is made for
    ("stable-diffusion-v1-5/stable-diffusion-v1-5", "creativeml-openrail-m"),
    ("runwayml/stable-diffusion-v1-5", "creativeml-openrail-m"),
    ("benjamin-paine/stable-diffusion-v1-5", "creativeml-openrail-m"),
    ("CompVis/stable-diffusion-v1-", "creativeml-openrail-m"),
    ("stabilityai/stable-diffusion-2", "openrail++"),
)


def license_for(base_model: str) -> str | None:
    """The base model's license where known (None: unknown, omitted from the card)."""
    for prefix, name in _LICENSES:
        if base_model.startswith(prefix):
            return name
    return None


@dataclass
class RunFacts:
    """What the card says about a run, read from its folder."""

    run_dir: Path
    config: Any
    method: str
    steps: int
    status: str | None
    final: Path  # the pipeline folder or the LoRA file
    samples: list[Path]
    samples_step: int | None
    sample_prompts: list[str]
    exports: list[tuple[str, str]] = field(default_factory=list)  # (file name, the tool it is for)


def _md(text: str) -> str:
    """Text for inside a Markdown table cell or code span."""
    return text.replace("|", "\\|").replace("`", "'").replace("\n", " ")


def model_card(facts: RunFacts, repo_id: str, has_samples: bool):
    """The model card (huggingface_hub ModelCard): YAML metadata, training, samples, usage."""
    from huggingface_hub import ModelCard, ModelCardData

    tc = facts.config.train
    ev = facts.config.evaluation
    base, on_hub = public_base_model(tc.model)
    lora = facts.method == "lora"
    family = run_family(facts)
    tags = ["dreambooth", "diffusers", "text-to-image", *family.card_tags]
    tags += ["lora"] if lora else []
    tags += ["dreambooth-tui"]
    widget = None
    if has_samples:
        prompt = (facts.sample_prompts or list(ev.prompts) or [tc.instance_prompt])[0]
        widget = [{"text": prompt, "output": {"url": SAMPLES_FILE}}]
    data = ModelCardData(
        base_model=base if on_hub else None,
        license=license_for(base) if on_hub else None,
        library_name="diffusers",
        pipeline_tag="text-to-image",
        tags=tags,
        instance_prompt=tc.instance_prompt,
        widget=widget,
    )
    base_text = f"[{base}](https://huggingface.co/{base})" if on_hub else f"`{_md(base)}`"
    if not on_hub and base != tc.model:
        base_text += " (a local folder)"
    kind = f"LoRA (rank {tc.lora_rank}, alpha {tc.lora_alpha})" if lora else "full fine-tune"
    prior = "no"
    if tc.prior_preservation:
        prior = (
            f"yes: class prompt `{_md(tc.class_prompt or '')}`, {tc.num_class_images} class "
            f"images, loss weight {tc.prior_loss_weight:g}"
        )
    steps_text = f"{facts.steps}"
    if facts.steps != tc.max_train_steps:
        steps_text += f" (of {tc.max_train_steps} planned; the run {facts.status or 'stopped'})"
    rows = [
        ("method", f"DreamBooth, {kind}"),
        ("base model", base_text),
        ("instance prompt", f"`{_md(tc.instance_prompt)}`"),
        ("training steps", steps_text),
        ("resolution", f"{tc.resolution} px"),
        ("learning rate", f"{tc.learning_rate:g} ({tc.lr_scheduler}, {tc.lr_warmup_steps} warmup)"),
        (
            "batch size",
            f"{tc.train_batch_size} x {tc.gradient_accumulation_steps} gradient accumulation",
        ),
        ("prior preservation", prior),
        ("text encoder trained", "yes" if tc.train_text_encoder else "no"),
        ("mixed precision", tc.mixed_precision),
        ("seed", str(tc.seed)),
    ]
    table = "\n".join(f"| {k} | {v} |" for k, v in rows)
    what = "LoRA adapter weights for" if lora else "the weights of a full fine-tune of"
    samples_md = ""
    if has_samples:
        shown = "; ".join(f"`{_md(p)}`" for p in facts.sample_prompts) or "the validation prompts"
        samples_md = (
            f"\n## Samples\n\n![Validation samples at step {facts.samples_step}](./{SAMPLES_FILE})"
            f"\n\nValidation samples at step {facts.samples_step}, prompts: {shown}.\n"
        )
    body = f"""
# DreamBooth: {_md(tc.instance_prompt)}

This repository holds {what} {base_text}, trained with DreamBooth on a handful of
images of one subject. Put the instance prompt **`{_md(tc.instance_prompt)}`** in a prompt to get
that subject.

## Training

| setting | value |
|---|---|
{table}

Trained with dreambooth-tui {__version__}.
{samples_md}
## Usage

{_usage_snippet(repo_id, base, on_hub, lora, tc.instance_prompt, ev, family.pipeline_classes[0])}
{_files_md(facts)}"""
    return ModelCard(f"---\n{data.to_yaml()}\n---\n{body}")


def _files_md(facts: RunFacts) -> str:
    """Which file is for which tool, when the run has exports beside the diffusers files."""
    if not facts.exports:
        return ""
    from engine.export.listing import files_section

    main = facts.final.name if facts.method == "lora" else "model_index.json and its folders"
    return files_section(facts.exports, main)


def run_family(facts: RunFacts):
    """The run's model family: its final pipeline's (a full fine-tune), else its base model's
    (a LoRA), read without asking the Hub."""
    from engine.families import loading_family

    model = str(facts.final) if facts.final.is_dir() else facts.config.train.model
    return loading_family(model, facts.config.train.revision, cache_only=True)


def _usage_snippet(
    repo_id: str, base: str, on_hub: bool, lora: bool, prompt: str, ev, pipeline_class: str
) -> str:
    example = json.dumps(f"{prompt}, high quality", ensure_ascii=False)
    call = (
        f"image = pipe({example}, num_inference_steps={ev.num_inference_steps}, "
        f'guidance_scale={ev.guidance_scale:g}).images[0]\nimage.save("dreambooth.png")'
    )
    if lora:
        base_ref = json.dumps(base) if on_hub else '"path/to/the/base/model"'
        note = "" if on_hub else f"  # the base this LoRA was trained on: {base}"
        code = (
            f"import torch\nfrom diffusers import {pipeline_class}\n\n"
            f"pipe = {pipeline_class}.from_pretrained({base_ref}, "
            f'torch_dtype=torch.float16).to("cuda"){note}\n'
            f'pipe.load_lora_weights("{repo_id}", weight_name="{LORA_FILE}")\n{call}'
        )
        cli = (
            f"hf download {repo_id} {LORA_FILE} --local-dir lora\n"
            f"dreambooth-tui generate --model {base if on_hub else 'BASE_MODEL'} "
            f"--lora lora/{LORA_FILE} --prompt {example}"
        )
    else:
        code = (
            f"import torch\nfrom diffusers import {pipeline_class}\n\n"
            f'pipe = {pipeline_class}.from_pretrained("{repo_id}", '
            f'torch_dtype=torch.float16).to("cuda")\n{call}'
        )
        cli = f"dreambooth-tui generate --model {repo_id} --prompt {example}"
    return (
        f"With diffusers:\n\n```python\n{code}\n```\n\nWith dreambooth-tui:\n\n```bash\n{cli}\n```"
    )
