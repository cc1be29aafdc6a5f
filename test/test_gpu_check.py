"""bench/gpu_check.sh and bench/gpu_check.py: the CPU side of the GPU check (a dry run, argument parsing)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from .bench_support import load_bench

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "bench" / "gpu_check.sh"


def _gpu_check():
    return load_bench("gpu_check")


def test_shell_script_parses_and_reports_a_python_without_torch(tmp_path: Path) -> None:
    assert subprocess.run(["bash", "-n", str(SCRIPT)], capture_output=True).returncode == 0
    fake = tmp_path / "python"
    fake.write_text("#!/bin/sh\nexit 1\n")  # a Python that cannot import anything
    fake.chmod(0o755)
    done = subprocess.run(
        ["bash", str(SCRIPT), "--dry-run", "--out", str(tmp_path / "out"), "--python", str(fake)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert "stage 1 (bench/gpu_check.py): exit 1" in (tmp_path / "out" / "summary.txt").read_text()
    bad = subprocess.run(["bash", str(SCRIPT), "--bogus"], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 64 and "unknown option --bogus" in bad.stderr


def test_dry_run_writes_a_report_with_every_check(tmp_path: Path) -> None:
    gpu_check = _gpu_check()
    code = gpu_check.main(["--out", str(tmp_path), "--dry-run"])
    report = json.loads((tmp_path / "gpu_check.json").read_text())
    assert code == 0, report
    statuses = {name: result["status"] for name, result in report["checks"].items()}
    assert statuses == {
        "eager_fp16": "skip",
        "compiled": "skip",
        "export": "pass",
        "postprocess": "pass",
        "batch": "pass",
    }
    export = report["checks"]["export"]
    assert export["graph_breaks"] == 0 and export["user_inputs"] == [[1, 3, 28, 56], [2]]
    assert "| postprocess | pass |" in (tmp_path / "gpu_check.md").read_text()


def test_arguments_are_checked() -> None:
    gpu_check = _gpu_check()
    args = gpu_check.parse_args(["--out", "x", "--size", "56x112", "--camera", "720x1280"])
    assert args.size == (56, 112) and args.camera == (720, 1280) and not args.dry_run
    for bad in (["--out", "x", "--size", "50x100"], ["--out", "x", "--size", "big"], []):
        with pytest.raises(SystemExit):
            gpu_check.parse_args(bad)
    _, missing = gpu_check.check_imports()
    assert missing == []  # this environment has everything the check needs
