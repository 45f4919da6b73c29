"""nvidia-smi's CSV (tests/services/nvidia_smi/) read into GPUs with their model, and a probe of a
GPU host turned into a registered machine with offers."""

from __future__ import annotations

from pathlib import Path

import pytest

from gpuyard.errors import InvalidInput
from gpuyard.runtimes.engine_probe import EngineFacts, cdi_gpus
from gpuyard.services.machines import onboarding, smi
from gpuyard.store.db import transaction

FIXTURES = Path(__file__).with_name("nvidia_smi")


def read(name: str) -> list[smi.Gpu]:
    return smi.parse((FIXTURES / name).read_text())


@pytest.mark.parametrize(("name", "count", "model", "mib", "gb", "driver", "cap", "gen", "power"), [
    ("h100-sxm-8x.csv", 8, "H100 SXM", 81559, 79.6, "550.54.15", 900, 5, 700.0),
    ("rtx4090-2x.csv", 2, "RTX 4090", 24564, 24.0, "550.120", 890, 4, 450.0),
    ("a100-sxm4-80gb-4x.csv", 4, "A100 SXM4", 81920, 80.0, "535.183.01", 800, 4, 400.0),
    ("a100-pcie-40gb.csv", 1, "A100 PCIE", 40960, 40.0, "535.183.01", 800, 4, 250.0),
    ("l40s-1x.csv", 1, "L40S", 46068, 45.0, "570.133.20", 890, 4, 350.0),
    ("h100-pcie-na.csv", 2, "H100 PCIE", 81559, 79.6, "550.54.15", 900, 5, None),
])
def test_captured_outputs(name, count, model, mib, gb, driver, cap, gen, power):
    gpus = read(name)
    assert [g.index for g in gpus] == list(range(count))
    assert {(g.model, g.memory_mib, g.memory_gb, g.driver_version, g.compute_cap, g.pci_gen, g.power_w)
            for g in gpus} == {(model, mib, gb, driver, cap, gen, power)}
    assert all(g.known and g.uuid.startswith("GPU-") and g.name.startswith("NVIDIA ") for g in gpus)
    assert len({g.uuid for g in gpus}) == count


def test_names_columns_in_any_order_units_or_none():
    assert [smi.model_name(n) for n in (
        "NVIDIA GeForce RTX 4090", "NVIDIA GeForce RTX 3090", "NVIDIA GeForce RTX 4090 D", "NVIDIA H200",
        "NVIDIA A100 80GB PCIe", "Tesla V100-SXM2-16GB", "NVIDIA RTX A6000", "NVIDIA L4", "NVIDIA A40",
        "NVIDIA GeForce RTX 4080 SUPER")] == [
        "RTX 4090", "RTX 3090", "RTX 4090 D", "H200", "A100 PCIE", "Tesla V100", "RTX A6000", "L4", "A40",
        "RTX 4080 SUPER"]
    text = "name, memory.total [MiB], index\nNVIDIA L40S, 46068, 1\nNVIDIA L40S, 46068, 0\n"  # nounits
    assert [(g.index, g.memory_mib, g.driver_version) for g in smi.parse(text)] == [(0, 46068, None),
                                                                                 (1, 46068, None)]
    assert smi.parse("") == []
    with pytest.raises(InvalidInput, match="CSV table with name and memory.total"):
        smi.parse("NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver.")
    with pytest.raises(InvalidInput, match="line 2 has 1 columns"):
        smi.parse("name, memory.total [MiB]\nNVIDIA L40S\n")


def facts(smi_name: str | None, **info) -> EngineFacts:
    base = {"Name": "gpu-07", "NCPU": 64, "MemTotal": 512 * 2**30, "OperatingSystem": "Ubuntu 22.04.4 LTS",
            "KernelVersion": "6.5.0-41-generic", "Architecture": "x86_64", "ServerVersion": "27.3.1",
            "DiscoveredDevices": [{"Source": "cdi", "ID": f"nvidia.com/gpu={i}"} for i in range(8)]
            + [{"Source": "cdi", "ID": "nvidia.com/gpu=all"}]}
    output = (FIXTURES / smi_name).read_text() if smi_name else None
    return EngineFacts(url="ssh://root@gpu-07", info={**base, **info}, gpu_runtime="cdi",
                       df_line="overlay 1953514584 10485760 1943028824 1% /",
                       cpu_line="model name\t: AMD EPYC 9554 64-Core Processor",
                       cdi_devices=cdi_gpus({**base, **info}), smi_output=output,
                       smi_error=None if smi_name else "no GPUs")


def test_a_probe_report_and_the_machine_it_registers(app, make_account):
    found = onboarding.facts_to_found(facts("h100-sxm-8x.csv"))
    assert len(found.gpus) == 8 and found.gpu_name == "H100 SXM" and found.gpu_ram == 79.6
    report = found.report()
    assert "cpu:      64 cores, AMD EPYC 9554 64-Core Processor" in report
    assert "ram:      512 GB" in report and "disk:     1863 GB (container storage)" in report
    assert "gpus:     8 x H100 SXM (79.6 GB each, driver 550.54.15, via cdi)" in report
    assert "  7: NVIDIA H100 80GB HBM3, 81559 MiB, GPU-" in report

    make_account("ops", admin=True)
    with transaction(app.state.sessions) as session:
        machine_id, summary = onboarding.register(session, found, onboarding.Listing(price_gpu=2.5))
    assert summary == (f"Machine {machine_id} (gpu-07) added, owner ops: 8 x H100 SXM, offered at "
                       "$2.5/GPU/hour (8 GPUs offered).")
    with make_account("renter").http() as c:
        rows = c.post("/api/v0/bundles/", json={"order": [["num_gpus", "asc"]]}).json()["offers"]
    assert [o["num_gpus"] for o in rows] == [1, 2, 4, 8]
    one = rows[0]
    assert one["gpu_name"] == "H100 SXM" and one["dph_base"] == 2.5 and one["compute_cap"] == 900
    assert one["driver_version"] == "550.54.15" and one["cpu_cores"] == 64 and one["os_version"] == "22.04"
    assert one["gpu_ram"] == pytest.approx(79.6 * 1000)
    assert one["cpu_name"] == "AMD EPYC 9554 64-Core Processor"


def test_cpu_only_and_mixed_hosts():
    found = onboarding.facts_to_found(facts(None, DiscoveredDevices=[]))
    assert found.gpus == [] and found.gpu_name == "CPU only" and found.gpu_runtime == "none"
    assert "gpus:     none: CPU-only (no GPUs)" in found.report()
    assert found.specs()["dlperf"] == 0.0 and found.specs()["gpu_runtime"] == "none"
    mixed = facts("l40s-1x.csv")
    mixed.smi_output += "1, NVIDIA GeForce RTX 4090, GPU-x, 24564 MiB, 570.133.20, 8.9, 4, 450.00 W\n"
    with pytest.raises(InvalidInput, match=r"several models \(L40S, RTX 4090\)"):
        onboarding.facts_to_found(mixed)
