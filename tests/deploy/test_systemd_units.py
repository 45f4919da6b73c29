"""deploy/systemd: the units are ones systemd accepts (``systemd-analyze verify`` finds nothing
to say about them), with ExecStart pointed at this checkout's gpuyard."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from image import ROOT

UNITS = ROOT / "deploy" / "systemd"
# templates get an instance name, as `systemctl enable gpuyard-api@8686` gives them
INSTANCES = {"gpuyard-api@.service": "gpuyard-api@8686.service",
             "gpuyard-worker@.service": "gpuyard-worker@9001.service"}


def test_systemd_accepts_the_units(tmp_path: Path):
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed (Debian: the systemd package)")
    gpuyard = Path(sys.executable).parent / "gpuyard"
    names = []
    for unit in sorted(UNITS.glob("*.service")):
        text = unit.read_text()
        assert "ExecStart=/opt/gpuyard/bin/gpuyard " in text
        target = tmp_path / INSTANCES.get(unit.name, unit.name)
        target.write_text(text.replace("/opt/gpuyard/bin/gpuyard", str(gpuyard)))
        names.append(str(target))
    assert len(names) == 3
    done = subprocess.run([analyze, "verify", "--man=no", *names], capture_output=True, text=True)
    assert done.returncode == 0 and (done.stdout + done.stderr).strip() == "", done.stdout + done.stderr
