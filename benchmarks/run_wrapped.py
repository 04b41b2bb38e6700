"""Run a training program in this process and record what a benchmark reads from outside it.

    python -m benchmarks.run_wrapped --out RESULT.json [--stop-at MODULE:ATTR ...]
        (--script PATH | --module NAME) -- ARGS...

The program (diffusers' train_dreambooth.py, or `python -m engine run RUN_DIR`) runs unchanged,
as `__main__`, with ARGS as its command line. Around it this wrapper:

- timestamps each line of the tqdm bar named `--progress` (default `Steps`, the scripts'
  bar) written to stderr (`Steps:  40%|####  | 12/30 [...]`): the first time each
  step count is shown is when that step finished, as the user watching the bar sees it;
- reads the process's peak memory when the program ends: `torch.cuda.max_memory_allocated`
  (and `max_memory_reserved`) on a GPU, the peak resident set (VmHWM) otherwise;
- optionally stops the program where it starts its final save (`--stop-at
  diffusers:DiffusionPipeline.from_pretrained`): that attribute is replaced by a function that
  raises StopRun (a BaseException, so the program's `except Exception` does not swallow it).
  Training is over by then; only the writing of the final model (4 GB at SD1.5 size) is cut.

The JSON: argv, exit_code, stopped_at, error, wall_s, peak_mem, peak_reserved, device, progress
([[seconds since start, step], ...]).
"""

from __future__ import annotations

import argparse
import importlib
import json
import re
import runpy
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from benchmarks.common import peak_rss


def progress_pattern(desc: str) -> re.Pattern[str]:
    """tqdm's line for the bar named desc: `Steps:  23%|##3      | 3/13 [00:01<...`."""
    return re.compile(re.escape(desc) + r":[^\r\n|]*\|[^\r\n|]*\|\s*(\d+)/(\d+) \[")


class StopRun(BaseException):
    """Raised where the program starts work the benchmark does not measure."""


class ProgressTee:
    """A stderr that passes everything through and timestamps tqdm's step counts."""

    def __init__(self, stream: Any, t0: float, pattern: re.Pattern[str]) -> None:
        self._stream = stream
        self._pattern = pattern
        self._t0 = t0
        self.points: list[tuple[float, int]] = []
        self._seen: set[int] = set()

    def write(self, text: str) -> int:
        now = time.perf_counter() - self._t0
        for m in self._pattern.finditer(text):
            n = int(m.group(1))
            if n not in self._seen:
                self._seen.add(n)
                self.points.append((round(now, 6), n))
        return self._stream.write(text)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def install_stop(target: str, hits: list[str]) -> tuple[Any, str, Any]:
    """Replace MODULE:A.B with a function that raises StopRun (and records that it was hit).

    Returns (owner, name, the original) for restoring it."""
    module_name, _, attr_path = target.partition(":")
    owner: Any = importlib.import_module(module_name)
    *parents, name = attr_path.split(".")
    for part in parents:
        owner = getattr(owner, part)
    if not hasattr(owner, name):
        raise SystemExit(f"--stop-at {target}: {module_name} has no {attr_path}")

    def stop(*args: Any, **kwargs: Any) -> Any:
        hits.append(target)
        raise StopRun(target)

    original = owner.__dict__.get(name, getattr(owner, name))
    setattr(owner, name, stop)
    return owner, name, original


def peak_memory() -> dict[str, Any]:
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.synchronize()
        return {
            "device": "cuda",
            "peak_mem": int(torch.cuda.max_memory_allocated()),
            "peak_reserved": int(torch.cuda.max_memory_reserved()),
            "gpu": torch.cuda.get_device_name(),
        }
    return {"device": "cpu", "peak_mem": peak_rss(), "peak_reserved": None}


def parse_args(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    if "--" in argv:
        i = argv.index("--")
        own, rest = argv[:i], argv[i + 1 :]
    else:
        own, rest = argv, []
    p = argparse.ArgumentParser(prog="run_wrapped", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True, help="where the JSON goes")
    p.add_argument("--progress", default="Steps", help="the tqdm bar's description")
    p.add_argument("--stop-at", action="append", default=[], metavar="MODULE:ATTR")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--script", help="a Python file run as __main__")
    which.add_argument("--module", help="a module run as __main__ (python -m)")
    return p.parse_args(own), rest


def main(argv: list[str] | None = None) -> int:
    args, rest = parse_args(sys.argv[1:] if argv is None else argv)
    t0 = time.perf_counter()
    tee = ProgressTee(sys.stderr, t0, progress_pattern(args.progress))
    hits: list[str] = []
    result: dict[str, Any] = {"argv": rest, "exit_code": 0, "stopped_at": None, "error": None}
    old_argv, old_stderr = sys.argv, sys.stderr
    sys.stderr = tee
    patched: list[tuple[Any, str, Any]] = []
    try:
        for target in args.stop_at:
            patched.append(install_stop(target, hits))
        if args.script:
            sys.argv = [args.script, *rest]
            sys.path.insert(0, str(Path(args.script).resolve().parent))
            runpy.run_path(args.script, run_name="__main__")
        else:
            sys.argv = [args.module, *rest]
            runpy.run_module(args.module, run_name="__main__", alter_sys=True)
    except StopRun as exc:
        result["stopped_at"] = str(exc)
    except SystemExit as exc:
        code = exc.code
        result["exit_code"] = code if isinstance(code, int) else (0 if code is None else 1)
        if hits:  # the program caught StopRun's exit path itself
            result["stopped_at"] = hits[0]
    except Exception as exc:  # noqa: BLE001 - reported in the JSON and as the exit code
        traceback.print_exc()
        result["exit_code"] = 1
        result["error"] = f"{exc.__class__.__name__}: {exc}"
    finally:
        sys.argv, sys.stderr = old_argv, old_stderr
        for owner, name, original in reversed(patched):
            setattr(owner, name, original)
    result["wall_s"] = time.perf_counter() - t0
    result.update(peak_memory())
    result["progress"] = tee.points
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    return int(result["exit_code"] or 0)


if __name__ == "__main__":
    sys.exit(main())
