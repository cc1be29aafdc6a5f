#!/usr/bin/env bash
# One prepared GPU check run (at most ~8 minutes): the GPU paths a CUDA machine without TensorRT can run.
#
#   bench/gpu_check.sh [--out DIR] [--python PYTHON] [--dry-run]
#
# Needs a Python with torch (CUDA) already installed; installs nothing and needs no network. The repository
# is imported from its folder (PYTHONPATH), so no `pip install` is needed; missing modules are reported.
# Stages (time limits 150 + 120 + 200 s, so at most 8 minutes; a failing stage does not stop the next):
#   1. bench/gpu_check.py: eager fp16, compiled backend, torch.export graph, GPU post-processing, batching
#   2. pytest -m gpu (skipped when pytest is missing)
#   3. bench/gpu_bench.py --archs vits14: eager / compiled fp16 at 518x1036, pipeline vs network,
#      post-processing at 1080p torch vs numpy
# Report: DIR/gpu_check.md (+ .json), DIR/pytest_gpu.log, DIR/gpu_bench.txt, DIR/summary.txt.
# --dry-run: stage 1 on the CPU with a tiny model; stages 2 and 3 only print their commands.
set -u

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT_DIR="${OUT:-$REPO/gpu_check_report}"
PYTHON=""
DRY_RUN=0
while [ $# -gt 0 ]; do
    case "$1" in
        --out) OUT_DIR="$2"; shift 2 ;;
        --python) PYTHON="$2"; shift 2 ;;
        --dry-run) DRY_RUN=1; shift ;;
        -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
        *) echo "gpu_check.sh: unknown option $1" >&2; exit 64 ;;
    esac
done
if [ -z "$PYTHON" ]; then
    # The first Python that has torch: this checkout's venv, then the system's.
    for candidate in "$REPO/.venv/bin/python" python3 python; do
        if command -v "$candidate" >/dev/null 2>&1 && "$candidate" -c "import torch" >/dev/null 2>&1; then
            PYTHON="$candidate"
            break
        fi
    done
fi
mkdir -p "$OUT_DIR"
SUMMARY="$OUT_DIR/summary.txt"
: > "$SUMMARY"
note() { echo "$*" | tee -a "$SUMMARY"; }

if [ -z "$PYTHON" ]; then
    note "gpu_check: no Python with torch found (tried $REPO/.venv/bin/python, python3, python); pass --python"
    exit 2
fi
export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
cd "$REPO" || exit 2
note "gpu_check: $(date -u '+%Y-%m-%d %H:%M:%S UTC'), python $("$PYTHON" -c 'import sys; print(sys.version.split()[0])'), $PYTHON"
if command -v nvidia-smi >/dev/null 2>&1; then
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1 | tee -a "$SUMMARY"
fi

status=0
DRY_FLAG=()
[ "$DRY_RUN" = 1 ] && DRY_FLAG=(--dry-run)
timeout 150 "$PYTHON" bench/gpu_check.py --out "$OUT_DIR" "${DRY_FLAG[@]}" 2>&1 | tee "$OUT_DIR/gpu_check.log"
rc=${PIPESTATUS[0]}
note "stage 1 (bench/gpu_check.py): exit $rc"
[ "$rc" != 0 ] && status=1

PYTEST_CMD=("$PYTHON" -m pytest -m gpu -q -p no:cacheprovider test/)
BENCH_CMD=("$PYTHON" bench/gpu_bench.py --archs vits14 --size 518x1036 --iters 30 --warmup 5 --camera 1080x1920)
if [ "$DRY_RUN" = 1 ]; then
    note "stage 2 (dry run, not run): ${PYTEST_CMD[*]}"
    note "stage 3 (dry run, not run): ${BENCH_CMD[*]}"
    exit $status
fi
if "$PYTHON" -c "import pytest" >/dev/null 2>&1; then
    timeout 120 "${PYTEST_CMD[@]}" > "$OUT_DIR/pytest_gpu.log" 2>&1
    rc=$?
    note "stage 2 (pytest -m gpu): exit $rc; $(tail -n 1 "$OUT_DIR/pytest_gpu.log")"
    [ "$rc" != 0 ] && status=1
else
    note "stage 2 (pytest -m gpu): skipped, pytest is not installed for $PYTHON"
fi
timeout 200 "${BENCH_CMD[@]}" > "$OUT_DIR/gpu_bench.txt" 2>&1
rc=$?
note "stage 3 (bench/gpu_bench.py): exit $rc (124: stopped at its time limit; partial output kept)"
[ "$rc" != 0 ] && status=1
exit $status
