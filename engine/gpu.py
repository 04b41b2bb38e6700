"""Device facts, memory figures and the NVML monitor that emits `gpu` events every ~2 s."""

from __future__ import annotations

import os
import resource
import threading
from typing import Any

import torch

_PAGE_SIZE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def device_info(device: torch.device) -> dict[str, Any]:
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        return {"kind": "cuda", "name": props.name, "total_mem": props.total_memory}
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return {"kind": device.type, "name": device.type, "total_mem": total}


_statm: tuple[int, int] | None = None  # (pid, fd of /proc/self/statm), kept open


def rss_bytes() -> int:
    """This process's resident set size. Read through a kept-open /proc/self/statm: opening it
    for every step event cost ~0.2 ms right after a training step (benchmarks/RESULTS.md)."""
    global _statm
    try:
        pid = os.getpid()
        if _statm is None or _statm[0] != pid:  # first call, or a forked child
            _statm = (pid, os.open("/proc/self/statm", os.O_RDONLY))
        return int(os.pread(_statm[1], 128, 0).split()[1]) * _PAGE_SIZE
    except (OSError, ValueError, IndexError):
        return 0


def memory(device: torch.device) -> dict[str, int]:
    """allocated/reserved/peak bytes on a GPU; process RSS (and peak RSS) on a CPU."""
    if device.type == "cuda":
        return {
            "allocated": torch.cuda.memory_allocated(device),
            "reserved": torch.cuda.memory_reserved(device),
            "peak": torch.cuda.max_memory_allocated(device),
        }
    rss = rss_bytes()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {"allocated": rss, "reserved": rss, "peak": max(peak, rss)}


def torch_device_identity(index: int) -> tuple[str | None, str | None]:
    """(UUID, PCI bus id "domain:bus:device") of torch's cuda:index, where torch reports them."""
    props = torch.cuda.get_device_properties(index)
    uuid = str(getattr(props, "uuid", "") or "") or None
    parts = [getattr(props, f"pci_{k}_id", None) for k in ("domain", "bus", "device")]
    pci = ":".join(f"{p:x}" for p in parts) if all(isinstance(p, int) for p in parts) else None
    return uuid, pci


class GpuMonitor:
    """Polls NVML in a daemon thread; emits nothing (and raises nothing) without a driver.

    `device_index` is torch's index; the NVML device is found by identity (engine.gpu_select),
    so CUDA_VISIBLE_DEVICES and MIG instances give the figures of the GPU torch uses."""

    def __init__(self, emit, device_index: int = 0, interval: float = 2.0) -> None:
        self.emit, self.index, self.interval = emit, device_index, interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._handle = None

    def start(self) -> GpuMonitor:
        from engine.gpu_select import list_nvml_devices, pick_nvml_device

        try:
            import pynvml

            pynvml.nvmlInit()
            uuid, pci = torch_device_identity(self.index)
            target = pick_nvml_device(
                list_nvml_devices(pynvml),
                self.index,
                os.environ.get("CUDA_VISIBLE_DEVICES"),
                uuid,
                pci,
            )
            if target is None:  # rather no NVML figures than another GPU's
                return self
            self._handle = pynvml.nvmlDeviceGetHandleByUUID(target)
        except Exception:  # no driver, no library, no device: no gpu events
            return self
        self._thread = threading.Thread(target=self._run, name="gpu-monitor", daemon=True)
        self._thread.start()
        return self

    def read(self) -> dict[str, Any]:
        import pynvml

        h = self._handle
        mem = pynvml.nvmlDeviceGetMemoryInfo(h)
        out: dict[str, Any] = {"util": None, "mem_used": mem.used, "mem_total": mem.total}
        try:  # not supported on a MIG instance
            out["util"] = pynvml.nvmlDeviceGetUtilizationRates(h).gpu
        except Exception:
            pass
        try:
            out["temp_c"] = pynvml.nvmlDeviceGetTemperature(h, pynvml.NVML_TEMPERATURE_GPU)
        except Exception:
            out["temp_c"] = None
        try:
            out["power_w"] = pynvml.nvmlDeviceGetPowerUsage(h) / 1000.0
        except Exception:
            out["power_w"] = None
        return out

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.emit("gpu", **self.read())
            except Exception:
                return

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
