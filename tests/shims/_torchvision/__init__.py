"""CPU tests only: the five torchvision transforms diffusers' DreamBooth scripts import.

This box's torch is a `+cpu` build that no torchvision on its package index matches (PyPI's
wheel needs the CUDA build's operators), so the test that runs the real scripts on the tiny
model puts this folder on the scripts' PYTHONPATH. The GPU run (benchmarks/gpu_bench.sh) uses
the real torchvision of that machine. The transforms follow torchvision's documented behaviour
for PIL images: Resize (shorter side), CenterCrop, RandomCrop, ToTensor, Normalize.
"""
