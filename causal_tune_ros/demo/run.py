"""The offline demo: synthesise a drive, replay it through the model, score it per condition."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from causal_tune_ros.demo.layout import (
    COLUMN_TITLES,
    COLUMNS,
    DEFAULT_OUT,
    DEFAULT_SEGMENTS,
    DEFAULT_SIZE,
    DEMO_ABLATION,
    DEMO_PRESETS,
    DRIVE_BAG,
    METRICS,
    MONTAGE,
    SEGMENTED_BAG,
    VIDEO,
)
from causal_tune_ros.demo.report import (
    ConditionScore,
    DemoResult,
    confusion_matrix,
    model_description,
    montage_image,
)
from causal_tune_ros.errors import ConfigError


def run_demo(
    out_dir: str | Path = DEFAULT_OUT,
    checkpoint: str | Path | None = None,
    bands: str | Path | None = None,
    ablation: str | Path | None = None,
    segments: Sequence[tuple[str, int]] = DEFAULT_SEGMENTS,
    size: tuple[int, int] | None = None,
    seed: int = 100,
    threads: int | None = None,
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> DemoResult:
    """Run the offline demo (steps 1-4 of the module docstring).

    Args:
        out_dir: Output folder (created; earlier demo outputs in it are replaced).
        checkpoint: Model (default: the shipped demo model).
        bands: Band presets file (:func:`~causal_tune_ros.weather.load_band_presets`; default: the
            shipped model's calibrated presets when ``checkpoint`` is ``None``, else the package's).
        ablation: Separately trained comparison model for the ``rein`` column (default: the shipped
            Rein-style model when ``checkpoint`` is ``None``, else no such column).
        segments: ``(condition, frames)`` of the drive, in order.
        size: Image ``(H, W)`` (default: the model's recorded input size, else 168x336).
        seed: Seed of the first scene of each segment. Training scenes use hashed seeds
            (``SyntheticDataset.scene_seed``), so these plain seeds are scenes the model never saw.
        threads: CPU inference threads.
        progress: Progress bars.
        log: Where status lines go.

    Returns:
        A :class:`DemoResult`.

    Raises:
        CausalTuneError: Missing model, unwritable output folder, bad options, a malformed presets file
            (``ConfigError``).
    """
    import torch

    from causal_tune_ros.backends import BackendSpec, create_backend
    from causal_tune_ros.band import DEFAULT_BAND
    from causal_tune_ros.classes import load_classes
    from causal_tune_ros.pipeline import SegmentationPipeline
    from causal_tune_ros.replay.command import default_checkpoint
    from causal_tune_ros.replay.replayer import Replayer, ReplayOptions
    from causal_tune_ros.synthetic.bag import IMAGE_TOPIC, drive_frames, write_drive
    from causal_tune_ros.weather import load_band_presets
    from causal_tune_ros.worker_thread import run_in_worker

    started = time.perf_counter()
    ckpt = Path(checkpoint) if checkpoint else default_checkpoint()
    presets = load_band_presets(bands if bands is not None else default_presets(checkpoint is None))
    ablation_ckpt = Path(ablation) if ablation else (_shipped_ablation() if checkpoint is None else None)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    description, recorded = model_description(ckpt)
    height, width = size or recorded or DEFAULT_SIZE
    conditions = [c for c, _ in segments]
    counts = dict(segments)
    log(f"demo: model {ckpt.name}: {description}")

    # 1. The drive, kept in memory for the ground truth, and as a bag.
    t0 = time.perf_counter()
    drive = list(drive_frames(conditions, counts, height, width, seed=seed))
    drive_bag = out / DRIVE_BAG
    write_drive(drive_bag, conditions, counts, size=(height, width), overwrite=True, drive=drive)
    seconds = time.perf_counter() - t0
    log(f"demo: rendered {len(drive)} frames of {width}x{height} -> {drive_bag} ({seconds:.1f} s)")

    # 2. Replay with the band preset of each frame's condition (from the bag's /weather topic).
    classes = load_classes()
    input_size = (height - height % 14 or 14, width - width % 14 or 14)
    spec = BackendSpec(name="eager", checkpoint=ckpt, input_size=input_size, num_threads=threads)
    backend = create_backend(spec)
    backend.load()
    pipeline = SegmentationPipeline(backend, classes)
    predictions: dict[int, np.ndarray] = {}
    overlays: dict[int, np.ndarray] = {}

    def keep(topic: str, stamp: int, rgb: np.ndarray, result: Any, condition: str) -> None:
        predictions[stamp] = result.class_mask
        overlays[stamp] = result.overlay

    options = ReplayOptions(
        weather="topic", video=out / VIDEO, overwrite=True, progress=progress, topics=[IMAGE_TOPIC]
    )
    segmented = out / SEGMENTED_BAG
    summary = Replayer(pipeline, options, band_presets=presets, on_frame=keep).run(drive_bag, segmented)
    log(f"demo: replay {summary.processed} frames at {summary.fps:.1f} fps -> {segmented}")
    # What `causal-tune replay --weather auto` applies to each frame: the replay's own weather stage.
    auto_options = ReplayOptions(weather="auto", topics=[IMAGE_TOPIC], progress=False)
    auto_track = Replayer(pipeline, auto_options, band_presets=presets).weather_track(drive_bag)
    auto_applied = dict(auto_track[IMAGE_TOPIC])

    # 3 + 4. Score: preset band (the replay's output), training band, the ablation model, band-pass off.
    scores: dict[str, ConditionScore] = {c: ConditionScore() for c in conditions}
    matrices = {c: {col: confusion_matrix(len(classes)) for col in COLUMNS} for c in [*conditions, "all"]}
    model = getattr(backend, "model", None)
    ablation_pipeline = None
    if ablation_ckpt is not None:
        spec = BackendSpec(name="eager", checkpoint=ablation_ckpt, input_size=input_size, num_threads=threads)
        ablation_backend = create_backend(spec)
        ablation_backend.load()
        ablation_pipeline = SegmentationPipeline(ablation_backend, classes)

    def score() -> None:
        for item in drive:
            frame = item.frame
            cond = frame.condition
            scores[cond].frames += 1
            scores[cond].auto_agree += int(auto_applied.get(item.stamp) == cond)
            train_pred = pipeline.process(frame.image, DEFAULT_BAND, overlay=False, confidence=False)
            for key in (cond, "all"):
                matrices[key]["preset"].update(predictions[item.stamp], frame.labels)
                matrices[key]["train"].update(train_pred.class_mask, frame.labels)
            if ablation_pipeline is not None:  # its own training band (a Rein-style model ignores it)
                pred = ablation_pipeline.process(frame.image, DEFAULT_BAND, overlay=False, confidence=False)
                for key in (cond, "all"):
                    matrices[key]["rein"].update(pred.class_mask, frame.labels)
        if model is None or not hasattr(model, "band_pass_enabled"):
            return
        model.band_pass_enabled = False  # a probe: the same weights, the whole spectrum reaches the tokens
        try:
            for item in drive:
                pred = pipeline.process(item.frame.image, DEFAULT_BAND, overlay=False, confidence=False)
                for key in (item.frame.condition, "all"):
                    matrices[key]["off"].update(pred.class_mask, item.frame.labels)
        finally:
            model.band_pass_enabled = True

    run_in_worker(score)  # model calls off the main thread (see run_in_worker)
    scores["all"] = ConditionScore(frames=len(drive), auto_agree=sum(s.auto_agree for s in scores.values()))
    for key, cols in matrices.items():
        for col, cm in cols.items():
            if cm.total:
                scores[key].miou[col] = cm.miou()

    # The same scene in every row (segments share their seeds), so rows differ only by the weather.
    k = min(counts.values()) // 2
    rows = []
    for cond in conditions:
        pick = [d for d in drive if d.frame.condition == cond][k]
        rows.append((cond, pick.frame.image, overlays[pick.stamp], classes.colorize(pick.frame.labels)))
    montage = montage_image(rows, out / MONTAGE, legend=(classes.names, classes.colors))
    video = summary.videos[0] if summary.videos else None

    result = DemoResult(
        out_dir=out,
        drive_bag=drive_bag,
        segmented_bag=segmented,
        montage=montage,
        video=video,
        scores=scores,
        seconds=time.perf_counter() - started,
        model=description,
        presets={c: presets[c] for c in scores if c in presets},
    )
    metrics = {
        "model": description,
        "checkpoint": str(ckpt),
        "ablation_checkpoint": None if ablation_ckpt is None else str(ablation_ckpt),
        "bands": {c: list(presets[c].as_tuple()) for c in conditions},
        "columns": {c: COLUMN_TITLES[c] for c in COLUMNS},
        "size": [height, width],
        "seed": seed,
        "seconds": round(result.seconds, 2),
        "torch_threads": torch.get_num_threads(),
        "conditions": {
            k: {"frames": s.frames, "miou": s.miou, "auto_weather_agree": s.auto_agree}
            for k, s in scores.items()
        },
    }
    (out / METRICS).write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
    return result


def default_presets(shipped_model: bool) -> Path | None:
    """The shipped model's calibrated presets when it is the model and they are installed, else ``None``
    (the package's ``config/weather_bands.yaml``)."""
    from causal_tune_ros.resources import config_path

    if not shipped_model:
        return None
    try:
        return config_path(DEMO_PRESETS)
    except ConfigError:
        return None


def _shipped_ablation() -> Path | None:
    """The shipped Rein-style demo model, or ``None`` if this install has none."""
    from causal_tune_ros.resources import data_path

    try:
        return data_path(*DEMO_ABLATION)
    except ConfigError:
        return None


#: How the shipped demo model is made (recorded in its metadata and in models/demo/README.md).
