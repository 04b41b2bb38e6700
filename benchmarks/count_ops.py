"""How many aten operations one UNet forward + backward dispatches (the host's share of a step).

    python -m benchmarks.count_ops --model sd15-arch --resolution 64

Counted with a TorchDispatchMode on the CPU (the count hardly depends on the device or the
resolution); view-like operations and detaches are counted separately, since they launch no
kernel on a GPU.
"""

from __future__ import annotations

import argparse
import collections
import contextlib

import torch
from torch.utils._python_dispatch import TorchDispatchMode

VIEWS = {
    "aten.view",
    "aten._unsafe_view",
    "aten.t",
    "aten.transpose",
    "aten.permute",
    "aten.expand",
    "aten.detach",
    "aten.slice",
    "aten.reshape",
    "aten.unsqueeze",
    "aten.squeeze",
    "aten.as_strided",
    "aten.alias",
    "aten.split",
    "aten.select",
}


class _Count(TorchDispatchMode):
    def __init__(self) -> None:
        super().__init__()
        self.ops: collections.Counter[str] = collections.Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.ops[str(func.overloadpacket)] += 1
        return func(*args, **(kwargs or {}))


def main(argv: list[str] | None = None) -> int:
    from diffusers import UNet2DConditionModel

    from benchmarks.bench_train import model_and_images

    p = argparse.ArgumentParser(prog="count_ops", description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="sd15-arch")
    p.add_argument("--model-dir", default=None)
    p.add_argument("--resolution", type=int, default=64)
    p.add_argument("--mixed-precision", choices=("no", "bf16"), default="bf16")
    args = p.parse_args(argv)
    model_dir, _ = model_and_images(args)
    unet = UNet2DConditionModel.from_pretrained(str(model_dir), subfolder="unet").train()
    side = args.resolution // 8
    x = torch.randn(1, unet.config.in_channels, side, side)
    ctx = torch.randn(1, 77, unet.config.cross_attention_dim)
    autocast = (
        torch.autocast("cpu", dtype=torch.bfloat16)
        if args.mixed_precision == "bf16"
        else contextlib.nullcontext()
    )
    with _Count() as count:
        with autocast:
            out = unet(x, torch.tensor([500]), ctx, return_dict=False)[0]
        out.float().square().mean().backward()
    total = sum(count.ops.values())
    views = sum(n for op, n in count.ops.items() if op in VIEWS)
    print(f"UNet forward+backward: {total} aten operations, {total - views} not views/detaches")
    print("most frequent:", ", ".join(f"{op} {n}" for op, n in count.ops.most_common(8)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
