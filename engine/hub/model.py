"""A trained run as a Hub model: its final pipeline folder or LoRA file, samples grid and card."""

from __future__ import annotations

from pathlib import Path

from engine.events import EVENTS_FILE, read_events
from engine.export.listing import exported_files
from engine.export.request import EXPORTS_DIR
from engine.hub.card import SAMPLES_FILE, RunFacts, model_card
from engine.hub.client import HubError, Log, check_repo_id
from engine.hub.push import PushResult, link_or_copy, push_folder
from engine.runs import CONFIG_FILE, LORA_FILE


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
    exports = [(path.name, tool) for path, tool in exported_files(run_dir)]
    return RunFacts(
        run_dir, cfg, method, steps, status, final, samples, samples_step, prompts, exports
    )


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


def build_model_upload(run_dir: Path, out: Path, repo_id: str, log: Log = print) -> RunFacts:
    """Write into OUT the model files, samples.png and README.md (the model card)."""
    from engine.generate.files import image_grid

    facts = read_run(run_dir)
    if facts.method == "lora":
        link_or_copy(facts.final, out / LORA_FILE)
    else:
        for src in sorted(facts.final.rglob("*")):
            if src.is_file() and not src.name.startswith("."):
                link_or_copy(src, out / src.relative_to(facts.final))
    for name, _tool in facts.exports:  # beside the diffusers files (model card: which is which)
        link_or_copy(run_dir / EXPORTS_DIR / name, out / name)
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
    return push_folder(
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
