"""`train.torch_compile`: compile the UNet's repeated transformer blocks, with a kept cache.

Regional compilation (diffusers' `ModelMixin.compile_repeated_blocks`): each class named in the
model's `_repeated_blocks` (`BasicTransformerBlock` for the SD UNet) is compiled once and reused
by all its instances, instead of tracing the whole UNet as one graph (which did not finish
compiling in 150 s on an H200, benchmarks/RESULTS.md). A model that declares no repeated blocks
is compiled whole.

The compiled code goes to one cache folder kept between runs (TORCHINDUCTOR_CACHE_DIR, unless
the user set it): `<DREAMBOOTH_TUI_CACHE or ~/.cache/dreambooth-tui>/torch-compile`. The second
run of the same model and shapes loads it instead of compiling. Compilation happens in the
first step: the engine reports it as the `compiling` phase, then logs how long it took and
whether the cache answered (torch's FX-graph cache hit/miss counters).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

# torch.compile's arguments for each block (tests swap in backend="eager": same tracing, no codegen)
COMPILE_OPTIONS: dict[str, Any] = {"fullgraph": True}


def cache_dir() -> Path:
    root = os.environ.get("DREAMBOOTH_TUI_CACHE") or Path.home() / ".cache" / "dreambooth-tui"
    return Path(root) / "torch-compile"


def use_cache_dir() -> Path:
    """Point torch's compile caches at the kept folder (a user's own setting wins)."""
    folder = Path(os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(cache_dir())))
    os.environ.setdefault("TRITON_CACHE_DIR", str(folder / "triton"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _base(model: Any) -> Any:
    model = getattr(model, "_orig_mod", model)
    return getattr(model, "module", model)


def compile_unet(unet: Any) -> tuple[Any, str]:
    """Compile in place where the model has repeated blocks; returns (model, what was done)."""
    import torch

    use_cache_dir()
    base = _base(unet)
    names = list(getattr(base, "_repeated_blocks", None) or [])
    if names and hasattr(base, "compile_repeated_blocks"):
        count = sum(1 for m in base.modules() if type(m).__name__ in names)
        base.compile_repeated_blocks(**COMPILE_OPTIONS)
        return unet, f"{count} {'/'.join(names)} blocks (regional)"
    return torch.compile(unet, **COMPILE_OPTIONS), "the whole UNet"


def cache_counters() -> dict[str, int]:
    """torch's FX-graph cache hits and misses so far in this process."""
    try:
        from torch._dynamo.utils import counters
    except ImportError:  # pragma: no cover - torch without dynamo
        return {}
    inductor = counters.get("inductor", {})
    return {k: int(inductor.get(f"fxgraph_cache_{k}", 0)) for k in ("hit", "miss")}


def compiled_blocks(unet: Any) -> int:
    """How many submodules are compiled in place (nn.Module.compile sets _compiled_call_impl)."""
    return sum(1 for m in _base(unet).modules() if getattr(m, "_compiled_call_impl", None))


def first_step_message(seconds: float, before: dict[str, int], what: str) -> str:
    after = cache_counters()
    hits = after.get("hit", 0) - before.get("hit", 0)
    misses = after.get("miss", 0) - before.get("miss", 0)
    cache = f"cache {hits} hit(s), {misses} miss(es) in {os.environ.get('TORCHINDUCTOR_CACHE_DIR')}"
    return f"compiled {what} in {seconds:.1f}s (the first step; {cache})"
