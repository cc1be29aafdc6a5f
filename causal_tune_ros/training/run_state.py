"""A training run's folder and resumable state: layout, resume resolution, RNG state, checkpoint folders.

Run folder (``run.output_dir``)::

    config.yaml              the resolved configuration
    metrics.csv              one row per logged step (see :mod:`~causal_tune_ros.training.run_log`)
    tensorboard/             when torch.utils.tensorboard imports
    checkpoints/step_NNNNNNN/{model.safetensors, train_state.pt}
    checkpoints/LATEST       name of the newest step folder
    model.safetensors        the final model (save_checkpoint format; embeds a random-init backbone)

A new run never writes into a folder that holds another run: continue it (``resume``) or replace it
(``overwrite``). Checkpoints are flushed to disk before they are renamed into place; a ``LATEST`` naming a
step folder that is missing or incomplete falls back to the newest complete one.
"""

from __future__ import annotations

import random
import re
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from causal_tune_ros.errors import CheckpointError
from causal_tune_ros.fileio import atomic_path, fsync_dir, fsync_file

STATE_FILE = "train_state.pt"
MODEL_FILE = "model.safetensors"
LATEST_FILE = "LATEST"
METRICS_FILE = "metrics.csv"
#: What a run writes into its folder; ``overwrite`` removes exactly these, nothing else.
RUN_OUTPUTS = (METRICS_FILE, MODEL_FILE, "config.yaml", "checkpoints", "tensorboard", "rank_state")
_STEP_NAME = re.compile(r"step_(\d+)")
#: Format version of train_state.pt.
STATE_VERSION = 1


def emit(message: str) -> None:
    """Print one line of run output on stdout, flushed (progress bars use stderr)."""
    print(message, file=sys.stdout, flush=True)


def complete_steps(folder: str | Path) -> list[Path]:
    """``step_*`` folders holding both the training state and the model, oldest first."""
    folder = Path(folder)
    found = []
    for entry in folder.glob("step_*"):
        match = _STEP_NAME.fullmatch(entry.name)
        if match and (entry / STATE_FILE).is_file() and (entry / MODEL_FILE).is_file():
            found.append((int(match.group(1)), entry))
    return [entry for _, entry in sorted(found)]


def resolve_resume(path: str | Path) -> Path:
    """The checkpoint folder ``--resume`` names: a step folder, a ``checkpoints/`` folder or a run folder.

    ``LATEST`` is followed when it names a complete step folder; when it names one that is missing or
    incomplete (a run killed while saving), or is absent, the newest complete step folder is used, with
    a warning.

    Raises:
        CheckpointError: If no training checkpoint is found there.
    """
    path = Path(path)
    for candidate in (path, path / "checkpoints"):
        if (candidate / STATE_FILE).is_file():
            return candidate
        latest = candidate / LATEST_FILE
        steps = complete_steps(candidate)
        if latest.is_file():
            name = latest.read_text(encoding="utf-8").strip()
            if _STEP_NAME.fullmatch(name) and candidate / name in steps:
                return candidate / name
            if steps:
                emit(
                    f"warning: {latest} names {name!r}, which is missing or incomplete (a run killed while "
                    f"saving?); resuming from the newest complete checkpoint {steps[-1].name}"
                )
                return steps[-1]
            raise CheckpointError(
                f"{latest} names {name!r}, which has no {STATE_FILE}, and {candidate} holds no other "
                "complete step folder"
            )
        if steps:
            return steps[-1]
    raise CheckpointError(
        f"no training checkpoint at {path} (expected {STATE_FILE} or checkpoints/{LATEST_FILE})"
    )


def run_outputs(folder: str | Path) -> list[str]:
    """The outputs of an earlier run that ``folder`` holds (names from :data:`RUN_OUTPUTS`)."""
    folder = Path(folder)
    found = []
    for name in RUN_OUTPUTS:
        entry = folder / name
        if entry.is_dir() and not any(entry.iterdir()):
            continue  # an empty folder holds nothing to lose
        if entry.exists():
            found.append(name)
    return found


def run_folder_problem(output_dir: str | Path, resume: str | Path | None, overwrite: bool) -> str | None:
    """Why a run may not start in ``output_dir``, or ``None`` when it may.

    A folder holding another run's outputs is refused unless the run resumes from a checkpoint inside
    that folder, or ``overwrite`` is set (and the run does not resume).
    """
    out = Path(output_dir)
    if resume is not None and overwrite:
        return "--resume and --overwrite exclude each other: continue the run, or replace it"
    found = run_outputs(out)
    if not found or overwrite:
        return None
    if resume is None:
        return (
            f"run folder {out} already holds a run ({', '.join(found)}); continue it with --resume {out}, "
            "replace it with --overwrite, or choose another --output-dir"
        )
    source = resolve_resume(resume).resolve()
    if not source.is_relative_to(out.resolve()):
        return (
            f"--resume {resume} continues a checkpoint of another folder into {out}, which holds a different "
            f"run ({', '.join(found)}); choose an empty --output-dir or pass --overwrite without --resume"
        )
    return None


def rng_state() -> dict[str, Any]:
    """This process's torch, numpy, Python (and CUDA, when initialised) RNG states, as tensors and tuples."""
    np_state = np.random.get_state()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": (np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *np_state[2:]),
        "python": random.getstate(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` returned."""
    torch.set_rng_state(state["torch"])
    name, key, *rest = state["numpy"]
    np.random.set_state((name, key.numpy().astype(np.uint32), *rest))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"])


def remove_run_outputs(folder: str | Path) -> list[str]:
    """Delete the outputs of the run ``folder`` holds (:data:`RUN_OUTPUTS` only) and return their names."""
    folder = Path(folder)
    found = run_outputs(folder)
    for name in found:
        entry = folder / name
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
    return found


def write_step_folder(
    root: Path, step: int, state: dict[str, Any], write_model: Callable[[Path], None], keep: int
) -> Path:
    """Write ``root/step_NNNNNNN`` with the training state and the model, then point ``LATEST`` at it.

    The folder is written beside its final name, flushed and renamed into place, so a crash never leaves
    a half-written checkpoint under that name; an older folder of the same step (a resumed run) is moved
    aside, not deleted, until the new one is in.

    Args:
        root: The ``checkpoints`` folder.
        step: Optimizer steps done.
        state: What goes into ``train_state.pt``.
        write_model: Writes the model file to the path it is given (atomically).
        keep: Newest step folders to keep (0: all).

    Returns:
        The step folder.
    """
    name = f"step_{step:07d}"
    final, tmp = root / name, root / f".{name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    torch.save(state, tmp / STATE_FILE)
    fsync_file(tmp / STATE_FILE)
    write_model(tmp / MODEL_FILE)
    fsync_dir(tmp)
    old = root / f".{name}.old"
    shutil.rmtree(old, ignore_errors=True)
    if final.exists():
        final.rename(old)
    tmp.rename(final)
    fsync_dir(root)
    shutil.rmtree(old, ignore_errors=True)
    with atomic_path(root / LATEST_FILE) as latest:
        latest.write_text(name + "\n", encoding="utf-8")
    if keep > 0:
        folders = sorted(p for p in root.glob("step_*") if p.is_dir())
        for stale in folders[:-keep]:
            if stale != final:
                shutil.rmtree(stale, ignore_errors=True)
    return final


def read_train_state(folder: Path, model_section: dict[str, Any]) -> dict[str, Any]:
    """Load ``folder/train_state.pt`` (tensors only) and check it belongs to this run's model.

    Args:
        folder: A step folder.
        model_section: This run's ``model`` config section as a plain mapping (``cfg.to_dict()["model"]``).

    Raises:
        CheckpointError: An unreadable file, an unsupported version, or a different model section.
    """
    path = folder / STATE_FILE
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a bad file
        raise CheckpointError(f"cannot read {path}: {exc}") from exc
    if state.get("version") != STATE_VERSION:
        raise CheckpointError(f"{path}: unsupported train-state version {state.get('version')}")
    if state.get("config", {}).get("model") != model_section:
        raise CheckpointError(f"{path}: the checkpoint's model section differs from this config's")
    return state
