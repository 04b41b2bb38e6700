"""diffusers' own DreamBooth scripts, brought in at benchmark time (never committed here).

    python -m benchmarks.real_scripts prepare --version 0.42.1          # GitHub tag tarball
    python -m benchmarks.real_scripts prepare --git DIFFUSERS_CLONE --ref v0.40.0-release

Writes `examples/dreambooth/train_dreambooth.py` and `train_dreambooth_lora.py` of that release
into `.ref/diffusers-examples/` (git-ignored; `gpu_bench.sh` carries it to a machine that has no
internet) with SOURCE.json: where they came from, the commit, each file's sha256.

`script_argv` turns a benchmark configuration into the flags a careful user of those scripts
would set: pre-computed text embeddings, gradients set to None (train_dreambooth.py; the LoRA
script always does), TF32 matmuls on a GPU (the engine enables them), 8-bit Adam and gradient
checkpointing where the engine uses them, no validation, no checkpoints inside the timed steps.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import shutil
import subprocess
import sys
import tarfile
import urllib.request
from pathlib import Path
from typing import Any

from benchmarks.common import ROOT

DEST = ROOT / ".ref" / "diffusers-examples"
SCRIPTS = ("train_dreambooth.py", "train_dreambooth_lora.py")
INNER = "examples/dreambooth"
BIG = 1_000_000


class PrepareError(RuntimeError):
    pass


def _write(dest: Path, files: dict[str, bytes], source: dict[str, Any]) -> Path:
    missing = [n for n in SCRIPTS if n not in files]
    if missing:
        raise PrepareError(f"{source['from']}: no {INNER}/{missing[0]} at {source['ref']}")
    tmp = dest.with_name(dest.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    source["sha256"] = {}
    for name in SCRIPTS:
        (tmp / name).write_bytes(files[name])
        source["sha256"][name] = hashlib.sha256(files[name]).hexdigest()
    (tmp / "SOURCE.json").write_text(json.dumps(source, indent=2) + "\n", encoding="utf-8")
    shutil.rmtree(dest, ignore_errors=True)
    tmp.rename(dest)
    return dest


def prepare_from_git(repo: str | Path, ref: str, dest: Path = DEST) -> Path:
    """Take the scripts from a local diffusers clone (a work tree or a bare git dir) at ref."""
    git = ["git", "--git-dir", str(_git_dir(Path(repo)))]
    try:
        commit = subprocess.run(
            [*git, "rev-parse", f"{ref}^{{commit}}"], capture_output=True, text=True, check=True
        ).stdout.strip()
        files = {
            name: subprocess.run(
                [*git, "show", f"{commit}:{INNER}/{name}"], capture_output=True, check=True
            ).stdout
            for name in SCRIPTS
        }
        setup = subprocess.run(
            [*git, "show", f"{commit}:setup.py"], capture_output=True, text=True, check=True
        ).stdout
    except (OSError, subprocess.CalledProcessError) as exc:
        raise PrepareError(f"{repo}: cannot read {ref} ({exc})") from exc
    version = next(
        (ln.split('"')[1] for ln in setup.splitlines() if ln.strip().startswith("version=")), None
    )
    source = {"from": str(repo), "ref": ref, "commit": commit, "diffusers_version": version}
    return _write(dest, files, source)


def _git_dir(repo: Path) -> Path:
    return repo / ".git" if (repo / ".git").exists() else repo


def prepare_from_url(version: str, dest: Path = DEST) -> Path:
    """Download the release's source tarball from GitHub (a machine with internet)."""
    url = f"https://codeload.github.com/huggingface/diffusers/tar.gz/refs/tags/v{version}"
    try:
        with urllib.request.urlopen(url, timeout=60) as resp:
            data = resp.read()
    except OSError as exc:
        raise PrepareError(
            f"{url}: {exc}; without internet, pass --git with a local diffusers clone"
        ) from exc
    files = {}
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        for member in tar.getmembers():
            parts = member.name.split("/", 1)
            if len(parts) == 2 and parts[1].startswith(INNER + "/"):
                name = parts[1][len(INNER) + 1 :]
                if name in SCRIPTS:
                    files[name] = tar.extractfile(member).read()
    source = {"from": url, "ref": f"v{version}", "commit": None, "diffusers_version": version}
    return _write(dest, files, source)


def source_info(dest: Path = DEST) -> dict[str, Any]:
    path = dest / "SOURCE.json"
    if not path.exists():
        raise PrepareError(
            f"{dest}: the diffusers scripts are not there; run "
            "`python -m benchmarks.real_scripts prepare --version X` (or --git CLONE --ref REF)"
        )
    return json.loads(path.read_text(encoding="utf-8"))


def script_argv(
    cfg: Any, model_dir: Path, images: Path, output_dir: Path, max_steps: int, cuda: bool
) -> tuple[str, list[str]]:
    """(script name, its flags) training what the engine's cfg.train trains."""
    tc = cfg.train
    lora = tc.method == "lora"
    argv = [
        f"--pretrained_model_name_or_path={model_dir}",
        f"--instance_data_dir={images}",
        f"--instance_prompt={tc.instance_prompt}",
        f"--output_dir={output_dir}",
        f"--resolution={tc.resolution}",
        f"--train_batch_size={tc.train_batch_size}",
        f"--gradient_accumulation_steps={tc.gradient_accumulation_steps}",
        f"--max_train_steps={max_steps}",
        f"--learning_rate={tc.learning_rate}",
        f"--lr_scheduler={tc.lr_scheduler}",
        f"--lr_warmup_steps={tc.lr_warmup_steps}",
        f"--max_grad_norm={tc.max_grad_norm}",
        "--adam_weight_decay=1e-2",  # the engine's AdamW weight decay (the script's default too)
        f"--mixed_precision={tc.mixed_precision}",
        f"--seed={tc.seed}",
        f"--checkpointing_steps={BIG}",
        "--pre_compute_text_embeddings",
    ]
    if tc.center_crop:
        argv.append("--center_crop")
    if cuda:
        argv.append("--allow_tf32")
    if tc.optimizer == "adamw8bit":
        argv.append("--use_8bit_adam")
    if tc.gradient_checkpointing:
        argv.append("--gradient_checkpointing")
    if lora:
        argv.append(f"--rank={tc.lora_rank}")
    else:
        argv.append("--set_grads_to_none")
    if tc.prior_preservation or tc.train_text_encoder or tc.snr_gamma or tc.offset_noise:
        raise ValueError("the real-script comparison covers instance-only UNet training")
    return (SCRIPTS[1] if lora else SCRIPTS[0]), argv


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="real_scripts", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    prep = sub.add_parser("prepare", help="fetch the two scripts into .ref/diffusers-examples")
    prep.add_argument("--version", help="a diffusers release (GitHub tag v<VERSION>)")
    prep.add_argument("--git", help="a local diffusers clone to take them from")
    prep.add_argument("--ref", help="with --git: the tag, branch or commit")
    prep.add_argument("--dest", default=str(DEST))
    args = p.parse_args(argv)
    try:
        if args.git:
            if not args.ref:
                p.error("--git needs --ref (a tag, branch or commit)")
            dest = prepare_from_git(args.git, args.ref, Path(args.dest))
        elif args.version:
            dest = prepare_from_url(args.version, Path(args.dest))
        else:
            p.error("give --version, or --git and --ref")
    except PrepareError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(dest, json.dumps(source_info(dest)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
