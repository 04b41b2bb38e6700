"""Share on the Hugging Face Hub: an image folder as a dataset, a trained run as a model.

Both pushes first write exactly what would be uploaded into a folder (the dry run stops there)
and then upload that folder with ``HfApi.create_repo`` + ``upload_folder``:

    dataset:  README.md (dataset card), data/train-00000-of-00001.parquet (image + text columns)
    model:    README.md (model card), samples.png (grid of the run's last validation samples),
              and the final pipeline folder (full) or pytorch_lora_weights.safetensors (LoRA)

The token comes from HF_TOKEN or the huggingface_hub login only. It is handed to HfApi and never
printed, logged, or written into a card, an event, a config or the run directory. Every failure
is a HubError whose message is one line.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine import __version__
from engine.errors import DreamboothError
from engine.events import EVENTS_FILE, read_events
from engine.runs import CONFIG_FILE
from engine.sources import public_base_model

LORA_FILE = "pytorch_lora_weights.safetensors"
SAMPLES_FILE = "samples.png"
DATA_FILE = "data/train-00000-of-00001.parquet"

Log = Callable[[str], None]


class HubError(DreamboothError):
    """A push that cannot go on; ``str()`` is one line. ``exit_code``: 2 usage (kind "config"),
    1 run time (kind "network")."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        kind = "config" if exit_code == 2 else "network"
        super().__init__(message, kind=kind, exit_code=exit_code)


# ------------------------------------------------------------------------------------------
# tokens and errors


def get_token() -> str | None:
    """HF_TOKEN, else the token saved by `hf auth login`; None when there is neither."""
    from huggingface_hub import get_token as hub_token

    token = hub_token()
    return token.strip() if token and token.strip() else None


def require_token() -> str:
    token = get_token()
    if not token:
        raise HubError(
            "no Hugging Face token: set HF_TOKEN or run `hf auth login` "
            "(a token with write access, from https://huggingface.co/settings/tokens)"
        )
    return token


def check_repo_id(repo_id: str) -> None:
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    try:
        validate_repo_id(repo_id)
    except HFValidationError:
        raise HubError(
            f"'{repo_id}' is not a valid repo id; use NAMESPACE/NAME, e.g. you/sks-dog",
            exit_code=2,
        ) from None
    if "/" not in repo_id:
        raise HubError(
            f"'{repo_id}' has no namespace; use NAMESPACE/NAME, e.g. you/{repo_id}", exit_code=2
        )


def _causes(exc: BaseException) -> list[BaseException]:
    chain: list[BaseException] = []
    e: BaseException | None = exc
    while e is not None and e not in chain and len(chain) < 10:
        chain.append(e)
        e = e.__cause__ or e.__context__
    return chain


def _transport_errors() -> tuple[type[BaseException], ...]:
    """Connection-level error classes of the HTTP clients huggingface_hub may use."""
    import importlib

    kinds: list[type[BaseException]] = [ConnectionError, TimeoutError]
    for name in ("httpx2", "httpx", "requests"):  # huggingface_hub 2.x: httpx2; 0.x: requests
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        for attr in ("TransportError", "ConnectionError", "Timeout"):
            kind = getattr(module, attr, None)
            if isinstance(kind, type) and issubclass(kind, BaseException):
                kinds.append(kind)
    return tuple(kinds)


def explain(exc: BaseException, repo_id: str, token: str | None = None) -> HubError:
    """One line for what went wrong talking to the Hub (the token is never part of it)."""
    from huggingface_hub.errors import (
        HfHubHTTPError,
        OfflineModeIsEnabled,
        RepositoryNotFoundError,
    )

    chain = _causes(exc)

    def find(kind):
        return next((c for c in chain if isinstance(c, kind)), None)

    if find(OfflineModeIsEnabled):
        message = (
            "cannot reach the Hugging Face Hub: offline mode is on (HF_HUB_OFFLINE); "
            "unset it and check the network to push"
        )
    elif find(RepositoryNotFoundError):
        message = (
            f"repository '{repo_id}' not found (404), or the token cannot see it; check the "
            "id and that the namespace is your user or an organisation you belong to"
        )
    elif (http := find(HfHubHTTPError)) is not None:
        status = http.response.status_code if http.response is not None else None
        if status == 401:
            message = (
                "the Hugging Face token was rejected (401 unauthorized); set a valid HF_TOKEN "
                "or run `hf auth login`"
            )
        elif status == 403:
            message = (
                f"not permitted to write to '{repo_id}' (403 forbidden); use a token with "
                "write access to that namespace"
            )
        elif status == 404:
            message = (
                f"repository '{repo_id}' not found (404), or the token cannot see it; check "
                "the id and the namespace"
            )
        else:
            detail = (http.server_message or "").strip().splitlines()
            detail_text = f": {detail[0]}" if detail else ""
            message = f"the Hugging Face Hub refused the upload (HTTP {status}){detail_text}"
    elif (net := find(_transport_errors())) is not None:
        message = (
            "cannot reach the Hugging Face Hub (no network?): "
            f"{type(net).__name__}: {str(net).splitlines()[0] if str(net) else 'no response'}"
        )
    elif isinstance(exc, ValueError):  # e.g. the Hub rejected the card's metadata
        message = f"the upload was refused: {' '.join(str(exc).split())}"
    else:
        message = f"the upload failed: {type(exc).__name__}: {' '.join(str(exc).split())}"
    if token:
        message = message.replace(token, "***")
    return HubError(message)


TIMEOUT_ENV = "DREAMBOOTH_TUI_HUB_TIMEOUT"
DEFAULT_TIMEOUT_S = 120.0


def bound_requests() -> float:
    """Give every Hub request a timeout (huggingface_hub's client has none: a server that stops
    answering would hang a push forever). huggingface_hub retries 408/429/5xx answers, dropped
    connections and timeouts itself, 5 times over about 25 s; then the push fails in one line.
    Returns the timeout in seconds ($DREAMBOOTH_TUI_HUB_TIMEOUT, default 120)."""
    try:
        import httpx2
        from huggingface_hub import set_client_factory
        from huggingface_hub.utils._http import default_client_factory
    except ImportError:  # huggingface_hub < 1.0 (requests): its own per-call timeouts apply
        return 0.0
    try:
        seconds = float(os.environ.get(TIMEOUT_ENV) or DEFAULT_TIMEOUT_S)
    except ValueError:
        raise HubError(f"{TIMEOUT_ENV} must be a number of seconds", exit_code=2) from None

    def factory() -> httpx2.Client:
        client = default_client_factory()
        client.timeout = httpx2.Timeout(seconds, connect=min(seconds, 30.0))
        return client

    set_client_factory(factory)
    return seconds


def upload(folder: Path, repo_id: str, repo_type: str, private: bool, message: str, log: Log):
    """Create the repo (if missing) and upload ``folder`` to it in one commit (all or nothing);
    returns the repo URL only once that commit is accepted."""
    from huggingface_hub import HfApi

    token = require_token()
    bound_requests()
    api = HfApi(token=token, library_name="dreambooth-tui", library_version=__version__)
    try:
        url = api.create_repo(repo_id, repo_type=repo_type, private=private, exist_ok=True)
        log(f"uploading {count_files(folder)} files to {url} ...")
        api.upload_folder(
            folder_path=str(folder), repo_id=repo_id, repo_type=repo_type, commit_message=message
        )
    except HubError:
        raise
    except Exception as exc:
        raise explain(exc, repo_id, token) from None
    return str(url)


# ------------------------------------------------------------------------------------------
# files


def count_files(folder: Path) -> int:
    return sum(1 for p in folder.rglob("*") if p.is_file())


def list_files(folder: Path) -> list[tuple[str, int]]:
    """(path relative to folder, size) of every file, sorted."""
    return sorted(
        (p.relative_to(folder).as_posix(), p.stat().st_size)
        for p in folder.rglob("*")
        if p.is_file()
    )


def human_size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"


def _link_or_copy(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dst)  # a full model is gigabytes: don't copy where a link will do
    except OSError:
        shutil.copy2(src, dst)


def _prepare_out_dir(out: Path) -> Path:
    """An empty folder for a dry run: a new one, or an earlier dry run's (replaced)."""
    out = out.expanduser()
    if out.exists():
        if not out.is_dir():
            raise HubError(f"'{out}' exists and is not a folder", exit_code=2)
        entries = list(out.iterdir())
        if entries and not (out / "README.md").exists():
            raise HubError(
                f"'{out}' exists and is not an earlier dry run (no README.md); "
                "give an empty or new --output-dir",
                exit_code=2,
            )
        shutil.rmtree(out)
    out.mkdir(parents=True)
    return out


def _report(folder: Path, log: Log, header: str) -> None:
    files = list_files(folder)
    log(header)
    for rel, size in files:
        log(f"  {rel}  ({human_size(size)})")
    log(f"{len(files)} files, {human_size(sum(s for _, s in files))}")


@dataclass
class PushResult:
    folder: Path | None  # the dry-run folder (None after a real push: the staging is removed)
    url: str | None  # the repo URL after a real push
    files: list[tuple[str, int]]


def _push(
    build: Callable[[Path], None],
    repo_id: str,
    repo_type: str,
    private: bool,
    dry_run: bool,
    out: Path,
    staging_parent: Path | None,
    message: str,
    log: Log,
) -> PushResult:
    if dry_run:
        out = _prepare_out_dir(out)
        build(out)
        files = list_files(out)
        _report(out, log, f"dry run: would upload to {repo_type} repo '{repo_id}':")
        log(f"nothing uploaded; everything is in {out}")
        return PushResult(out, None, files)
    require_token()  # fail before building anything
    stage = Path(tempfile.mkdtemp(prefix=".hub-upload-", dir=staging_parent))
    try:
        build(stage)
        files = list_files(stage)
        url = upload(stage, repo_id, repo_type, private, message, log)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    log(f"pushed {len(files)} files to {url}")
    return PushResult(None, url, files)


# ------------------------------------------------------------------------------------------
# datasets


def build_dataset(folder: Path, out: Path, repo_id: str, log: Log = print) -> int:
    """Write OUT/data/*.parquet (image, and text where captions exist) and OUT/README.md.

    Unreadable images are skipped with one warning each. Returns the number of images.
    """
    import datasets

    from engine.images import caption_for, scan_images

    try:
        scan = scan_images(folder)
    except (FileNotFoundError, NotADirectoryError):
        raise HubError(f"'{folder}' is not a folder", exit_code=2) from None
    for path, reason in scan.skipped:
        log(f"warning: skipping {path.name}: {reason}")
    if not scan.good:
        raise HubError(
            f"'{folder}' holds no usable image (.jpg, .jpeg, .png, .webp, .bmp)", exit_code=2
        )
    images = [{"bytes": p.read_bytes(), "path": p.name} for p in scan.good]
    captions = [caption_for(p) for p in scan.good]
    columns: dict[str, Any] = {"image": images}
    features = {"image": datasets.Image()}
    n_captions = sum(c is not None for c in captions)
    if n_captions:
        columns["text"] = captions
        features["text"] = datasets.Value("string")
    ds = datasets.Dataset.from_dict(columns, features=datasets.Features(features))
    (out / DATA_FILE).parent.mkdir(parents=True, exist_ok=True)
    bars = datasets.utils.logging.is_progress_bar_enabled()
    datasets.utils.logging.disable_progress_bar()
    try:
        ds.to_parquet(str(out / DATA_FILE))
    finally:
        if bars:
            datasets.utils.logging.enable_progress_bar()
    card = dataset_card(repo_id, len(images), n_captions, folder.name)
    card.save(out / "README.md")
    return len(images)


def _size_category(n: int) -> str:
    return "n<1K" if n < 1000 else "1K<n<10K" if n < 10_000 else "10K<n<100K"


def dataset_card(repo_id: str, n_images: int, n_captions: int, folder_name: str):
    from huggingface_hub import DatasetCard, DatasetCardData

    data = DatasetCardData(
        pretty_name=folder_name,
        task_categories=["text-to-image"],
        size_categories=[_size_category(n_images)],
        tags=["dreambooth", "image", "dreambooth-tui"],
        configs=[
            {
                "config_name": "default",
                "data_files": [{"split": "train", "path": "data/train-*"}],
            }
        ],
    )
    if n_captions == n_images:
        captions = "Each has a caption in the `text` column (from the `.txt` file beside it)."
    elif n_captions:
        captions = (
            f"{n_captions} of them have a caption in the `text` column (from the `.txt` file "
            "beside the image); the others have none (training uses the instance prompt)."
        )
    else:
        captions = "There are no captions: training uses the instance prompt for every image."
    body = f"""
# {folder_name}

{n_images} images of one subject, for DreamBooth fine-tuning of Stable Diffusion. {captions}

Made with dreambooth-tui (`dreambooth-tui push-dataset`).

## Use

```python
from datasets import load_dataset

ds = load_dataset("{repo_id}", split="train")
ds[0]["image"]  # a PIL image
```

To train on it with dreambooth-tui, name it in the config:

```yaml
train:
  instance_data: {repo_id}
```
"""
    return DatasetCard(f"---\n{data.to_yaml()}\n---\n{body}")


def default_dataset_dry_run_dir(folder: Path) -> Path:
    folder = Path(folder).expanduser().resolve()
    return folder.parent / f"{folder.name}-hub-dry-run"


def push_dataset(
    folder: str | Path,
    repo_id: str,
    private: bool = False,
    dry_run: bool = False,
    output_dir: str | Path | None = None,
    log: Log = print,
) -> PushResult:
    """Build a dataset from an image folder and push it (or, dry run, write it to a folder)."""
    folder = Path(folder).expanduser()
    check_repo_id(repo_id)
    if not folder.is_dir():
        raise HubError(f"'{folder}' is not a folder", exit_code=2)
    out = Path(output_dir) if output_dir else default_dataset_dry_run_dir(folder)
    return _push(
        lambda target: build_dataset(folder, target, repo_id, log),
        repo_id,
        "dataset",
        private,
        dry_run,
        out,
        None,
        "Upload dataset with dreambooth-tui",
        log,
    )


# ------------------------------------------------------------------------------------------
# models

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


def read_run(run_dir: Path) -> RunFacts:
    from engine.config import ConfigError, load_config

    if not run_dir.is_dir():
        raise HubError(f"run folder '{run_dir}' does not exist", exit_code=2)
    if not (run_dir / CONFIG_FILE).exists():
        raise HubError(f"'{run_dir}' is not a run folder (no {CONFIG_FILE})", exit_code=2)
    try:
        cfg = load_config(run_dir / CONFIG_FILE)
    except ConfigError as exc:
        raise HubError(str(exc), exit_code=2) from None
    final_dir = run_dir / "final"
    if (final_dir / "model_index.json").exists():
        method, final = "full", final_dir
    elif (final_dir / LORA_FILE).exists():
        method, final = "lora", final_dir / LORA_FILE
    else:
        raise HubError(
            f"run '{run_dir}' has no final model (final/ with model_index.json or "
            f"{LORA_FILE}); did the run finish?",
            exit_code=2,
        )
    events = read_events(run_dir / EVENTS_FILE)
    steps, status = cfg.train.max_train_steps, None
    step_events = [e for e in events if e.get("type") == "step"]
    finished = [e for e in events if e.get("type") == "finished"]
    if finished and isinstance(finished[-1].get("step"), int):
        steps, status = finished[-1]["step"], finished[-1].get("status")
    elif step_events and isinstance(step_events[-1].get("step"), int):
        steps = step_events[-1]["step"]
    samples, samples_step, prompts = _latest_samples(run_dir, events)
    return RunFacts(run_dir, cfg, method, steps, status, final, samples, samples_step, prompts)


def _latest_samples(run_dir: Path, events: list[dict]) -> tuple[list[Path], int | None, list[str]]:
    root = run_dir / "samples"
    if not root.is_dir():
        return [], None, []
    steps = []
    for d in root.iterdir():
        if d.is_dir() and d.name.startswith("step-") and d.name[5:].isdigit():
            if any(d.glob("*.png")):
                steps.append((int(d.name[5:]), d))
    if not steps:
        return [], None, []
    step, folder = max(steps)
    pngs = sorted(folder.glob("*.png"))
    prompts: list[str] = []
    for e in events:
        if e.get("type") == "sample" and e.get("step") == step:
            p = e.get("prompt")
            if isinstance(p, str) and p not in prompts:
                prompts.append(p)
    return pngs, step, prompts


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
    tags = ["dreambooth", "diffusers", "text-to-image", "stable-diffusion"]
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

{_usage_snippet(repo_id, base, on_hub, lora, tc.instance_prompt, ev)}
"""
    return ModelCard(f"---\n{data.to_yaml()}\n---\n{body}")


def _usage_snippet(repo_id: str, base: str, on_hub: bool, lora: bool, prompt: str, ev) -> str:
    example = json.dumps(f"{prompt}, high quality", ensure_ascii=False)
    call = (
        f"image = pipe({example}, num_inference_steps={ev.num_inference_steps}, "
        f'guidance_scale={ev.guidance_scale:g}).images[0]\nimage.save("dreambooth.png")'
    )
    if lora:
        base_ref = json.dumps(base) if on_hub else '"path/to/the/base/model"'
        note = "" if on_hub else f"  # the base this LoRA was trained on: {base}"
        code = (
            "import torch\nfrom diffusers import StableDiffusionPipeline\n\n"
            f"pipe = StableDiffusionPipeline.from_pretrained({base_ref}, "
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
            "import torch\nfrom diffusers import StableDiffusionPipeline\n\n"
            f'pipe = StableDiffusionPipeline.from_pretrained("{repo_id}", '
            f'torch_dtype=torch.float16).to("cuda")\n{call}'
        )
        cli = f"dreambooth-tui generate --model {repo_id} --prompt {example}"
    return (
        f"With diffusers:\n\n```python\n{code}\n```\n\nWith dreambooth-tui:\n\n```bash\n{cli}\n```"
    )


def build_model_upload(run_dir: Path, out: Path, repo_id: str, log: Log = print) -> RunFacts:
    """Write into OUT the model files, samples.png and README.md (the model card)."""
    from engine.generate import image_grid

    facts = read_run(run_dir)
    if facts.method == "lora":
        _link_or_copy(facts.final, out / LORA_FILE)
    else:
        for src in sorted(facts.final.rglob("*")):
            if src.is_file() and not src.name.startswith("."):
                _link_or_copy(src, out / src.relative_to(facts.final))
    has_samples = False
    if facts.samples:
        try:
            image_grid(facts.samples).save(out / SAMPLES_FILE)
            has_samples = True
        except OSError as exc:
            log(f"warning: no samples grid ({exc})")
    model_card(facts, repo_id, has_samples).save(out / "README.md")
    return facts


def push_model(
    run_dir: str | Path,
    repo_id: str,
    private: bool = False,
    dry_run: bool = False,
    output_dir: str | Path | None = None,
    log: Log = print,
) -> PushResult:
    """Push a run's final model (or LoRA file) with a model card (or, dry run, write it)."""
    run_dir = Path(run_dir).expanduser()
    check_repo_id(repo_id)
    read_run(run_dir)  # usage errors before anything else
    out = Path(output_dir) if output_dir else run_dir / "hub-dry-run"
    return _push(
        lambda target: build_model_upload(run_dir, target, repo_id, log),
        repo_id,
        "model",
        private,
        dry_run,
        out,
        run_dir,  # staging beside the model, so files are hard links, not copies
        "Upload DreamBooth model with dreambooth-tui",
        log,
    )
