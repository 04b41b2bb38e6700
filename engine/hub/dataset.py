"""An image folder as a Hub dataset: parquet (image, and text where captions exist) and its card."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from engine.hub.client import HubError, Log, check_repo_id
from engine.hub.push import PushResult, push_folder

DATA_FILE = "data/train-00000-of-00001.parquet"


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
    return push_folder(
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
