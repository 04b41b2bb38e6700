"""Share on the Hugging Face Hub: an image folder as a dataset, a trained run as a model.

Both pushes first write exactly what would be uploaded into a folder (the dry run stops there)
and then upload that folder with ``HfApi.create_repo`` + ``upload_folder``:

    dataset:  README.md (dataset card), data/train-00000-of-00001.parquet (image + text columns)
    model:    README.md (model card), samples.png (grid of the run's last validation samples),
              and the final pipeline folder (full) or pytorch_lora_weights.safetensors (LoRA)

The token comes from HF_TOKEN or the huggingface_hub login only. It is handed to HfApi and never
printed, logged, or written into a card, an event, a config or the run directory. Every failure
is a HubError whose message is one line.

    client.py   token, repo-id check, one-line errors, upload with bounded requests
    push.py     build into a folder, then the dry-run report or the staged upload
    dataset.py  an image folder as a dataset (parquet) and its card
    model.py    a run's final model or LoRA, samples grid and card
    card.py     the model card
"""

from __future__ import annotations

from engine.hub.card import (
    SAMPLES_FILE,
    RunFacts,
    license_for,
    model_card,
)
from engine.hub.client import (
    DEFAULT_TIMEOUT_S,
    TIMEOUT_ENV,
    HubError,
    Log,
    bound_requests,
    check_repo_id,
    count_files,
    explain,
    get_token,
    require_token,
    upload,
)
from engine.hub.dataset import (
    DATA_FILE,
    build_dataset,
    dataset_card,
    default_dataset_dry_run_dir,
    push_dataset,
)
from engine.hub.model import build_model_upload, push_model, read_run
from engine.hub.push import PushResult, list_files
from engine.runs import LORA_FILE

__all__ = [
    "DATA_FILE",
    "DEFAULT_TIMEOUT_S",
    "LORA_FILE",
    "SAMPLES_FILE",
    "TIMEOUT_ENV",
    "HubError",
    "Log",
    "PushResult",
    "RunFacts",
    "bound_requests",
    "build_dataset",
    "build_model_upload",
    "check_repo_id",
    "count_files",
    "dataset_card",
    "default_dataset_dry_run_dir",
    "explain",
    "get_token",
    "license_for",
    "list_files",
    "model_card",
    "push_dataset",
    "push_model",
    "read_run",
    "require_token",
    "upload",
]
