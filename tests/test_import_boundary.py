"""The import boundary between the app (tui/) and the engine, read from the source.

The app process never imports torch, diffusers, transformers, accelerate, peft, bitsandbytes or
datasets (DESIGN.md: it starts instantly over SSH and stays small). The app may import only the
engine's contract modules below. The graph is read with the AST, so a lazy import inside a
function the other tests never call is seen too; a runtime check then imports everything the app
can reach and runs its lazy paths in a fresh interpreter.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.import_graph import app_modules, chain, imports_of, module_name, reachable

ROOT = Path(__file__).resolve().parent.parent

HEAVY = ("torch", "diffusers", "transformers", "accelerate", "peft", "bitsandbytes", "datasets")

# The engine modules the app may import (lazily or not), directly or through each other. A
# package entry covers its submodules. Adding one here is a decision: it and everything it
# imports at module level load in the app process. Listed in docs/architecture.md too.
CONTRACT_MODULES = (
    "engine",  # package root: __version__
    "engine.config",  # the config contract: schema, load/save, errors, path rules, key rules
    "engine.errors",  # the base of every expected failure
    "engine.doctor",  # dataset checks (PIL only)
    "engine.events",  # the event-stream contract: reading events.jsonl
    "engine.redact",  # token redaction, used by events
    "engine.runs",  # run directories: listing, state
    "engine.runlock",  # a run's lock and stop marks
    "engine.runstop",  # stopping a live run's engine
    "engine.schedulers",  # the sampler names (diffusers only inside make_scheduler)
    "engine.launch",  # preparing a run directory and spawning the engine process
    "engine.progress",  # progress/ETA/GPU figures from events
    "engine.images",  # listing and opening image files (PIL)
    "engine.term_images",  # terminal image-protocol detection
    "engine.sources",  # the one rule: builtin:tiny, local folder or hub id
    "engine.sample_request",  # sample now: the request file the Train screen's key writes
    "engine.buckets",  # aspect-ratio bucket rules (pure): the Data screen's bucket column
    "engine.families",  # model families (torch inside methods only): known_family, defaults
    "engine.model_family",  # reading model_index.json (the family of a model)
    "engine.estimate",  # will it fit: the peak GPU memory and time from the weights' headers
    "engine.export",  # the export's refusals (request.py): the dialog words one for the app
    "engine.fit",  # the estimate's line on the Config screen (and `check`), this GPU via NVML
    "engine.gpu_select",  # which NVML device a run uses (engine.fit's lookup, in a worker)
    "engine.file_modes",  # config saves give a new file the umask's mode (mkstemp makes 0600)
)


# Submodules of a contract package that the app must not import (they reach for torch).
ENGINE_ONLY = (
    "engine.config.checks",  # preflight: probes the device with torch
    "engine.export.kohya",  # the converters and the export run: torch and safetensors
    "engine.export.original_clip",
    "engine.export.run",
    "engine.export.single_file",
    "engine.export.at_end",
)


def _covered(name: str, modules: tuple[str, ...]) -> bool:
    """`name` is listed, or is a submodule of a listed package (the root `engine` covers only
    itself: it would cover every engine module)."""
    return any(name == m or ("." in m and name.startswith(m + ".")) for m in modules)


def _allowed(name: str) -> bool:
    return _covered(name, CONTRACT_MODULES) and not _covered(name, ENGINE_ONLY)


def _heavy(name: str) -> bool:
    return name.split(".")[0] in HEAVY


def boundary_violations(root: Path) -> list[str]:
    """Why the app under `root` breaks the boundary: one line per arrow, empty when it holds."""
    graph = reachable(root, app_modules(root))
    problems = [f"heavy import: {chain(graph, m)}" for m in sorted(graph) if _heavy(m)]
    problems += [
        f"engine module outside the contract list: {chain(graph, m)}"
        for m in sorted(graph)
        if m.split(".")[0] == "engine" and not _allowed(m)
    ]
    return problems


def test_app_reaches_no_ml_library_and_only_contract_engine_modules():
    assert boundary_violations(ROOT) == []


def test_the_graph_sees_the_apps_known_lazy_imports():
    # Guard against a walker that silently sees nothing: these arrows exist only inside
    # functions today (tui/engine_client.py, tui/screens/data_jobs.py).
    graph = reachable(ROOT, app_modules(ROOT))
    assert {"engine.launch", "engine.doctor", "engine.config"} <= set(graph)
    assert "engine.launch" in imports_of(ROOT, "tui.engine_client", lazy=True)
    assert "engine.launch" not in imports_of(ROOT, "tui.engine_client", lazy=False)


def _copy_tree(tmp_path: Path) -> Path:
    for package in ("tui", "engine"):
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("*.pyc"))
    return tmp_path


def _plant(path: Path, code: str) -> None:
    path.write_text(path.read_text(encoding="utf-8") + "\n" + code, encoding="utf-8")


@pytest.mark.parametrize(
    ("module", "code"),
    [
        # lazily, in a function of an app module that no test calls
        ("tui/state.py", "def _planted():\n    import torch\n"),
        # lazily, as `from x import y`, in a screen
        ("tui/screens/data.py", "def _planted():\n    from diffusers import DDIMScheduler\n"),
        # at module level of a contract module the app imports only lazily (tui/engine_client.py)
        ("engine/launch.py", "import torch\n"),
        # at module level of a module the app reaches only transitively (via engine.events)
        ("engine/redact.py", "import peft\n"),
        # an engine module outside the contract list, imported lazily by the app
        ("tui/app.py", "def _planted():\n    from engine import train\n"),
        # a torch-free engine module outside the contract list (the root `engine` entry covers
        # only the package itself)
        ("tui/app.py", "def _planted():\n    from engine import cli_sample\n"),
        # the engine-only submodule of a contract package (engine.config.checks imports torch)
        ("tui/screens/config.py", "def _planted():\n    from engine.config import checks\n"),
    ],
)
def test_a_planted_heavy_or_unlisted_import_breaks_the_boundary(tmp_path, module, code):
    root = _copy_tree(tmp_path)
    assert boundary_violations(root) == []
    _plant(root / module, code)
    problems = boundary_violations(root)
    assert problems, f"planting {code!r} in {module} went unnoticed"
    assert any(module_name(root, root / module) in p for p in problems), problems


def test_a_lazy_heavy_import_inside_an_engine_module_function_is_not_an_arrow(tmp_path):
    # Engine modules count what importing them runs: engine.sources builds the tiny model (torch)
    # in a function the app never calls; planting another such body changes nothing.
    root = _copy_tree(tmp_path)
    _plant(root / "engine" / "events.py", "def _planted():\n    import torch\n")
    assert boundary_violations(root) == []


_RUNTIME = """
import importlib, json, sys, tempfile
from pathlib import Path
names = json.loads(sys.argv[1])
for name in names:
    importlib.import_module(name)
# the lazy paths the app takes at start and on its first screens
from engine.doctor import check_folder
from engine.images import list_image_files
from engine.runs import list_runs
from tui.state import build_state, data_folder
state = build_state(config_path=Path("sample_configs/demo.yaml"), demo=True)
assert state.config is not None, state.config_error
data_folder("builtin:tiny")
data_folder(state.instance_data)
folder = Path(tempfile.mkdtemp())
list_image_files(folder)
check_folder(folder)
list_runs(state.runs_dir)
from engine.fit import fit, this_gpu  # the Config screen's estimate line (NVML in a worker)
fit(state.config, this_gpu())
heavy = json.loads(sys.argv[2])
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in heavy)))
"""


def test_importing_everything_the_app_reaches_and_its_lazy_paths_loads_no_ml_library(tmp_path):
    graph = reachable(ROOT, app_modules(ROOT))
    own = sorted(m for m in graph if m.split(".")[0] in ("tui", "engine"))
    assert "tui.app" in own
    result = subprocess.run(
        [sys.executable, "-c", _RUNTIME, json.dumps(own), json.dumps(HEAVY)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
        env={**os.environ, "DREAMBOOTH_TUI_CACHE": str(tmp_path)},
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) == []


def engine_imports_of_tui(root: Path) -> list[str]:
    """`engine.x -> tui.y` for every import of tui anywhere in engine/ (lazy ones included)."""
    found = []
    for path in sorted((root / "engine").rglob("*.py")):
        name = module_name(root, path)
        found += [
            f"{name} -> {target}"
            for target in imports_of(root, name, lazy=True)
            if target.split(".")[0] == "tui"
        ]
    return found


def test_engine_never_imports_the_app():
    assert engine_imports_of_tui(ROOT) == []


def test_an_engine_import_of_the_app_is_seen(tmp_path):
    root = _copy_tree(tmp_path)
    _plant(root / "engine" / "runs.py", "def _planted():\n    from tui.app import run_app\n")
    assert engine_imports_of_tui(root) == ["engine.runs -> tui.app"]


def test_architecture_doc_lists_exactly_the_contract_modules():
    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    table = text.split("(`CONTRACT_MODULES`):", 1)[1].split("\n## ", 1)[0]
    rows = [line.split("|")[1].strip() for line in table.splitlines() if line.startswith("| ")]
    assert rows[2:] == list(CONTRACT_MODULES)  # after the header and its rule
