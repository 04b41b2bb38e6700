"""One push: the files built into a folder, then a dry run's report or the staged upload."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from engine.hub.client import HubError, Log, require_token, upload
from engine.progress import fmt_bytes


def list_files(folder: Path) -> list[tuple[str, int]]:
    """(path relative to folder, size) of every file, sorted."""
    return sorted(
        (p.relative_to(folder).as_posix(), p.stat().st_size)
        for p in folder.rglob("*")
        if p.is_file()
    )


def link_or_copy(src: Path, dst: Path) -> None:
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
        log(f"  {rel}  ({fmt_bytes(size)})")
    log(f"{len(files)} files, {fmt_bytes(sum(s for _, s in files))}")


@dataclass
class PushResult:
    folder: Path | None  # the dry-run folder (None after a real push: the staging is removed)
    url: str | None  # the repo URL after a real push
    files: list[tuple[str, int]]


def push_folder(
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
    """``build`` the files into a folder: a dry run leaves them in ``out`` and reports them;
    otherwise they are staged under ``staging_parent``, uploaded in one commit and removed."""
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
