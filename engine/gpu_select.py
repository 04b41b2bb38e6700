"""Which NVML device is the one torch trains on (for the `gpu` events the meter shows).

NVML numbers every GPU of the machine in PCI bus order and ignores CUDA_VISIBLE_DEVICES; torch's
`cuda:0` is the first *visible* device, in CUDA's order. So the meter must not open NVML device
`torch_index`: it finds the device by identity, in this order of trust:

1. the UUID torch reports for its device (a GPU, or a MIG instance),
2. its PCI bus id (a MIG instance's bus id is its parent GPU's),
3. CUDA_VISIBLE_DEVICES parsed as CUDA parses it: entries are indices, GPU UUIDs (`GPU-...`,
   a unique prefix is enough) or MIG UUIDs (`MIG-...`, or the older `MIG-GPU-<uuid>/gi/ci`);
   parsing stops at the first invalid entry, and a repeated device hides them all.

Torch-free and pure except `list_nvml_devices`, so the mapping is unit-tested without a GPU.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class NvmlDevice:
    index: int  # NVML's index (PCI bus order)
    uuid: str  # "GPU-8c0e...": what nvmlDeviceGetHandleByUUID takes
    pci_bus_id: str = ""  # "00000000:3B:00.0"
    mig: tuple[str, ...] = field(default=())  # MIG instance UUIDs ("MIG-..."), MIG mode only


def _hex(uuid: str) -> str:
    """A UUID reduced to its hex digits: "GPU-8C0E-..." and torch's "8c0e-..." compare equal."""
    text = uuid.strip().lower()
    for prefix in ("gpu-", "mig-"):
        if text.startswith(prefix):
            text = text[len(prefix) :]
    return re.sub(r"[^0-9a-f]", "", text)


def _pci(bus_id: str) -> tuple[int, int, int] | None:
    """(domain, bus, device) of "00000000:3B:00.0" or "0000:3b:00" (NVML and CUDA spellings)."""
    m = re.fullmatch(r"\s*(?:([0-9a-fA-F]+):)?([0-9a-fA-F]+):([0-9a-fA-F]+)(?:\.[0-7])?\s*", bus_id)
    if not m:
        return None
    return int(m.group(1) or "0", 16), int(m.group(2), 16), int(m.group(3), 16)


def parse_visible_devices(value: str | None) -> list[str] | None:
    """CUDA_VISIBLE_DEVICES as CUDA reads it: the valid entries up to the first invalid one.

    None: unset (every device visible). An entry is an index ("1"), a GPU UUID or a unique
    prefix of one ("GPU-8c0e..."), a MIG UUID ("MIG-...", "MIG-GPU-<uuid>/1/0")."""
    if value is None:
        return None
    entries: list[str] = []
    for raw in value.split(","):
        entry = raw.strip()
        if re.fullmatch(r"\d+", entry) or re.match(r"(?i)(gpu|mig)-", entry):
            entries.append(entry)
        else:
            break
    return entries


def _resolve_entry(entry: str, devices: list[NvmlDevice]) -> str | None:
    """The UUID (GPU or MIG) an entry names, or None when it names none or several."""
    if entry.isdigit():
        found = [d for d in devices if d.index == int(entry)]
        return found[0].uuid if found else None
    if entry.upper().startswith("MIG-GPU-"):  # MIG-GPU-<gpu uuid>/<gi>/<ci> (CUDA 11.0)
        gpu = _hex(entry[4:].split("/")[0])
        found = [d for d in devices if _hex(d.uuid) == gpu]
        return found[0].uuid if found else None
    want = _hex(entry)
    if entry.upper().startswith("MIG-"):
        found = [m for d in devices for m in d.mig if _hex(m) == want]
        return found[0] if len(found) == 1 else None
    found = [d.uuid for d in devices if want and _hex(d.uuid).startswith(want)]
    return found[0] if len(found) == 1 else None


def pick_nvml_device(
    devices: list[NvmlDevice],
    torch_index: int,
    visible: str | None,
    torch_uuid: str | None = None,
    torch_pci_bus_id: str | None = None,
) -> str | None:
    """The UUID of the NVML device (or MIG instance) behind torch's `cuda:torch_index`; None
    when it cannot be told (then the meter shows no NVML figures rather than another GPU's)."""
    if torch_uuid and _hex(torch_uuid):
        want = _hex(torch_uuid)
        for d in devices:
            if _hex(d.uuid) == want:
                return d.uuid
            for m in d.mig:
                if _hex(m) == want:
                    return m
    if torch_pci_bus_id and _pci(torch_pci_bus_id) is not None:
        want_pci = _pci(torch_pci_bus_id)
        found = [d for d in devices if _pci(d.pci_bus_id) == want_pci]
        if len(found) == 1:
            return found[0].uuid
    entries = parse_visible_devices(visible)
    if entries is None:
        ordered = sorted(devices, key=lambda d: d.index)
        return ordered[torch_index].uuid if 0 <= torch_index < len(ordered) else None
    resolved: list[str] = []
    for entry in entries:
        uuid = _resolve_entry(entry, devices)
        if uuid is None:
            break  # CUDA stops at the first entry that names no device
        if uuid in resolved:
            return None  # a repeated device: CUDA shows none
        resolved.append(uuid)
    return resolved[torch_index] if 0 <= torch_index < len(resolved) else None


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def list_nvml_devices(pynvml: Any) -> list[NvmlDevice]:
    """Every NVML device with its UUID, PCI bus id and MIG instances (NVML initialised)."""
    devices = []
    for i in range(pynvml.nvmlDeviceGetCount()):
        h = pynvml.nvmlDeviceGetHandleByIndex(i)
        try:
            bus = _text(pynvml.nvmlDeviceGetPciInfo(h).busId)
        except Exception:
            bus = ""
        migs: list[str] = []
        try:
            if pynvml.nvmlDeviceGetMigMode(h)[0]:
                for j in range(pynvml.nvmlDeviceGetMaxMigDeviceCount(h)):
                    try:
                        m = pynvml.nvmlDeviceGetMigDeviceHandleByIndex(h, j)
                    except Exception:
                        continue
                    migs.append(_text(pynvml.nvmlDeviceGetUUID(m)))
        except Exception:  # no MIG support on this GPU or driver
            pass
        devices.append(NvmlDevice(i, _text(pynvml.nvmlDeviceGetUUID(h)), bus, tuple(migs)))
    return devices
