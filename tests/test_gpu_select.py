"""The GPU meter's NVML device is the one torch uses: CUDA_VISIBLE_DEVICES parsed as CUDA parses
it (indices, GPU UUIDs and prefixes, MIG UUIDs), torch's own UUID and PCI bus id first. The NVML
device list is a fake (there is no GPU here); the parsing and the mapping are the real code."""

from __future__ import annotations

import pytest

from engine.gpu_select import NvmlDevice, parse_visible_devices, pick_nvml_device

A = "GPU-1a2b3c4d-0000-1111-2222-333344445555"
B = "GPU-9f8e7d6c-aaaa-bbbb-cccc-ddddeeeeffff"
C = "GPU-5e5e5e5e-1234-5678-9abc-def012345678"
MIG_1 = "MIG-0d0d0d0d-1111-5222-8333-444455556666"
MIG_2 = "MIG-7b7b7b7b-1111-5222-8333-444455556666"
DEVICES = [
    NvmlDevice(0, A, "00000000:1A:00.0"),
    NvmlDevice(1, B, "00000000:3B:00.0"),
    NvmlDevice(2, C, "00000000:5E:00.0", mig=(MIG_1, MIG_2)),
]


@pytest.mark.parametrize(
    "visible, torch_index, expected",
    [
        (None, 0, A),  # unset: every GPU, in order
        (None, 1, B),
        ("1", 0, B),  # cuda:0 is the second GPU, not NVML's device 0
        ("2,0", 0, C),
        ("2,0", 1, A),
        ("GPU-9f8e7d6c-aaaa-bbbb-cccc-ddddeeeeffff", 0, B),  # a full UUID
        ("GPU-5e5e,GPU-1a2b", 1, A),  # unique prefixes
        (MIG_2, 0, MIG_2),  # a MIG instance: its own UUID
        ("MIG-GPU-5e5e5e5e-1234-5678-9abc-def012345678/1/0", 0, C),  # CUDA 11.0 MIG spelling
        ("1,x,0", 0, B),  # parsing stops at the first invalid entry...
        ("1,x,0", 1, None),  # ...so only one device is visible
        ("1,7,0", 1, None),  # an index with no device also ends the list
        ("0,0", 0, None),  # a repeated device: CUDA shows none
        ("GPU-", 0, None),  # a prefix of every GPU names none
        ("", 0, None),  # empty: no device
        ("0", 3, None),  # an index torch would not have
    ],
)
def test_visible_devices_map_to_the_nvml_device(visible, torch_index, expected):
    assert pick_nvml_device(DEVICES, torch_index, visible) == expected


def test_torch_uuid_wins_over_the_environment():
    # torch spells a UUID without the prefix; its device identity beats any index arithmetic
    assert pick_nvml_device(DEVICES, 0, "0", torch_uuid="9f8e7d6c-aaaa-bbbb-cccc-ddddeeeeffff") == B
    assert pick_nvml_device(DEVICES, 0, None, torch_uuid=MIG_1[4:]) == MIG_1
    # an unknown UUID falls through to the PCI bus id, then to CUDA_VISIBLE_DEVICES
    assert pick_nvml_device(DEVICES, 0, "2", torch_uuid="ffff", torch_pci_bus_id="0:3b:0") == B
    assert pick_nvml_device(DEVICES, 0, "2", torch_uuid="ffff", torch_pci_bus_id="junk") == C


def test_parse_visible_devices_reads_like_cuda():
    assert parse_visible_devices(None) is None
    assert parse_visible_devices("") == []
    assert parse_visible_devices("0, 2,GPU-ab") == ["0", "2", "GPU-ab"]
    assert parse_visible_devices("3,-1,0") == ["3"]  # "-1" is invalid: the list ends there
    assert parse_visible_devices("MIG-x,gpu-y") == ["MIG-x", "gpu-y"]
