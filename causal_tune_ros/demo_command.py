"""``causal-tune demo``: the whole product on a fresh machine, with nothing downloaded.

1. renders a short synthetic drive (clear, then snow and night, then fog and rain) with exact labels and
   writes it as a rosbag2 (``demo_drive.mcap``);
2. replays it offline through the shipped demo model (``models/demo/``), with the band preset of each
   frame's condition (the demo model's calibrated presets, ``config/weather_bands_demo.yaml``), into
   ``demo_segmented.mcap`` and a side-by-side MP4;
3. writes a montage PNG (one row per condition: input | overlay | ground truth, and a class-colour legend);
4. prints mIoU per condition against the ground truth with the band preset per condition, with the
   training band everywhere, with the separately trained Rein-style model (the same tokens without the
   frequency domain, trained on the same data: the real ablation), and with this model's band-pass
   switched off (a probe of the same weights, not an ablation), and how many frames of each condition
   ``causal-tune replay --weather auto`` applies the right condition to (the replay's own weather
   stage, hysteresis included, on the same bag).

The demo model is a *small random-init ViT* trained on clear synthetic scenes only (not DINOv2; see
``models/demo/README.md``), so snow, night, fog and rain are unseen domains, as in the paper.

With ``--ros`` (needs rclpy) it instead starts the real segmentation node and plays the drive to it on
live topics, for ``ros2 topic echo`` / RViz.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from causal_tune_ros.errors import ConfigError

HELP = "synthesise a drive in five weathers, segment it with the shipped demo model, print mIoU per condition"

DEFAULT_OUT = "causal_tune_demo_out"
#: The drive: a snowy and a night stretch, plus a few frames of the other conditions.
DEFAULT_SEGMENTS: tuple[tuple[str, int], ...] = (
    ("clear", 3),
    ("snow", 6),
    ("night", 6),
    ("fog", 3),
    ("rain", 3),
)
#: Render size when the checkpoint records none: a multiple of 14, so the network sees every pixel.
DEFAULT_SIZE = (168, 336)

DRIVE_BAG = "demo_drive.mcap"
SEGMENTED_BAG = "demo_segmented.mcap"
MONTAGE = "demo_montage.png"
VIDEO = "demo_overlay.mp4"
METRICS = "demo_metrics.json"

COLUMNS = ("preset", "train", "rein", "off")
COLUMN_TITLES = {
    "preset": "preset bands",
    "train": "training band",
    "rein": "Rein-style model",
    "off": "filter-off probe",
}
#: The Rein-style ablation shipped beside the demo model, and the demo model's calibrated presets.
DEMO_ABLATION = ("models", "demo", "rein_demo.safetensors")
DEMO_PRESETS = "weather_bands_demo.yaml"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``causal-tune demo``."""
    parser.add_argument("--out", default=DEFAULT_OUT, help="output folder (default: ./%(default)s)")
    parser.add_argument(
        "--ros",
        action="store_true",
        help="start the real segmentation node and play the drive to it on live topics (needs rclpy)",
    )
    parser.add_argument(
        "--frames",
        metavar="COND=N,...",
        help="frames per condition, e.g. clear=3,snow=6,night=6 (default: "
        + ",".join(f"{c}={n}" for c, n in DEFAULT_SEGMENTS)
        + ")",
    )
    parser.add_argument("--size", metavar="HxW", help="image size (default: the demo model's input size)")
    parser.add_argument("--checkpoint", help="model to demonstrate (default: the shipped demo model)")
    parser.add_argument(
        "--bands",
        metavar="YAML",
        help="band presets per condition, e.g. the output of `causal-tune calibrate` (default: "
        f"config/{DEMO_PRESETS} for the shipped model, else config/weather_bands.yaml)",
    )
    parser.add_argument(
        "--ablation",
        metavar="CKPT",
        help="a separately trained comparison model scored in the 'Rein-style model' column (default: the "
        "shipped Rein-style demo model with the shipped demo model; none otherwise)",
    )
    parser.add_argument("--seed", type=int, default=100, help="scene seed (default: 100, unseen in training)")
    parser.add_argument("--threads", type=int, help="CPU threads for inference")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.add_argument("--loop", action="store_true", help="with --ros: play the drive until Ctrl-C")
    parser.add_argument(
        "--rate", type=float, default=1.0, help="with --ros: playback speed factor (default: 1.0)"
    )
    parser.add_argument(
        "--package-model",
        metavar="TRAINED",
        help="maintainers: turn a `causal-tune train` result (runs/synthetic_small/model.safetensors) into "
        "the shipped demo model (fp16, labelled; written to --package-to) and exit",
    )
    parser.add_argument(
        "--package-to",
        default="models/demo/causal_tune_demo.safetensors",
        help="with --package-model: output file (default: %(default)s)",
    )
    parser.add_argument(
        "--train-seconds", type=float, help="with --package-model: wall time of the training run, recorded"
    )
    parser.add_argument(
        "--train-command",
        help="with --package-model: the command that trained it, recorded (default: the demo recipe's)",
    )


def parse_segments(text: str | None) -> list[tuple[str, int]]:
    """``"clear=3,snow=6"`` -> ``[("clear", 3), ("snow", 6)]`` (``None``: the default drive).

    Raises:
        ConfigError: Malformed text, an unknown condition or a count below 1.
    """
    from causal_tune_ros.weather import CONDITIONS

    if not text:
        return list(DEFAULT_SEGMENTS)
    result = []
    for part in text.split(","):
        if not part.strip():
            continue
        name, sep, count = part.partition("=")
        name = name.strip().lower()
        if not sep or name not in CONDITIONS:
            raise ConfigError(f"--frames: expected COND=N with COND in {', '.join(CONDITIONS)}, got {part!r}")
        try:
            n = int(count)
        except ValueError:
            raise ConfigError(f"--frames: {part!r}: N must be an integer") from None
        if n < 1:
            raise ConfigError(f"--frames: {part!r}: N must be >= 1")
        result.append((name, n))
    if not result:
        raise ConfigError("--frames: no segment given")
    return result


@dataclass
class ConditionScore:
    """Scores of one condition.

    Attributes:
        frames: Frames of that condition.
        miou: Column (``preset``, ``train``, ``rein``, ``off``) -> mIoU in [0, 1].
        auto_agree: Frames of this condition to which ``replay --weather auto`` applies this condition
            (the replay's weather stage with its hysteresis, see ``Replayer.weather_track``).
    """

    frames: int = 0
    miou: dict[str, float] = field(default_factory=dict)
    auto_agree: int = 0


@dataclass
class DemoResult:
    """Everything the demo produced.

    Attributes:
        out_dir: Output folder.
        drive_bag: The synthetic input bag.
        segmented_bag: The replay's output bag.
        montage: Montage PNG.
        video: Side-by-side MP4 (``None`` if OpenCV could not write one).
        scores: Condition -> :class:`ConditionScore` (plus ``"all"``).
        seconds: Wall time of the demo.
        model: Description of the model (from its metadata).
    """

    out_dir: Path
    drive_bag: Path
    segmented_bag: Path
    montage: Path
    video: Path | None
    scores: dict[str, ConditionScore]
    seconds: float
    model: str
    presets: dict[str, Any] = field(default_factory=dict)

    def table(self) -> str:
        """The per-condition mIoU table (percent), with the preset band of each condition."""
        columns = [c for c in COLUMNS if any(c in s.miou for s in self.scores.values())]
        head = f"{'condition':<10} {'frames':>6}  {'preset band':>11}  "
        head += "  ".join(f"{COLUMN_TITLES[c]:>16}" for c in columns) + f"  {'auto weather':>12}"
        lines = [head, "-" * len(head)]
        for name, score in self.scores.items():
            band = self.presets.get(name)
            preset = f"{band.low:g}-{band.high:g}" if band is not None else ""
            cells = f"{preset:>11}  " + "  ".join(
                f"{100 * score.miou.get(c, float('nan')):>16.1f}" for c in columns
            )
            auto = f"{score.auto_agree}/{score.frames}" if name != "all" else ""
            lines.append(f"{name:<10} {score.frames:>6}  {cells}  {auto:>12}")
        return "\n".join(lines)


def _model_description(checkpoint: Path) -> tuple[str, tuple[int, int] | None]:
    from causal_tune_ros.model.checkpoint import read_checkpoint_metadata, recorded_input_size

    meta = read_checkpoint_metadata(checkpoint)
    user = meta.get("user") or {}
    description = str(user.get("description") or f"{meta.get('backbone', {}).get('arch', '?')} model")
    return description, recorded_input_size(checkpoint)


def _confusion(num_classes: int) -> Any:
    from causal_tune_ros.training.metrics import ConfusionMatrix

    return ConfusionMatrix(num_classes, ignore_index=255)


#: Height of one line of the class-colour legend under the montage, pixels.
LEGEND_LINE = 18


def _legend(names: Sequence[str], colors: np.ndarray, width: int) -> np.ndarray:
    """A white strip with one colour swatch and name per class, wrapped to ``width`` pixels."""
    import cv2

    font, scale = cv2.FONT_HERSHEY_SIMPLEX, 0.4
    cells = [
        (name, color, 16 + cv2.getTextSize(name, font, scale, 1)[0][0] + 12)
        for name, color in zip(names, colors, strict=True)
    ]
    lines: list[list[tuple[str, np.ndarray, int]]] = [[]]
    used = 6
    for cell in cells:
        if lines[-1] and used + cell[2] > width:
            lines.append([])
            used = 6
        lines[-1].append(cell)
        used += cell[2]
    strip = np.full((LEGEND_LINE * len(lines) + 4, width, 3), 255, dtype=np.uint8)
    for row, line in enumerate(lines):
        x, y = 6, 4 + row * LEGEND_LINE
        for name, color, cell_width in line:
            strip[y + 2 : y + 14, x : x + 12] = color
            cv2.rectangle(strip, (x, y + 2), (x + 11, y + 13), (0, 0, 0), 1)
            cv2.putText(strip, name, (x + 16, y + 12), font, scale, (0, 0, 0), 1, cv2.LINE_AA)
            x += cell_width
    return strip


def _montage(
    rows: list[tuple[str, np.ndarray, np.ndarray, np.ndarray]],
    path: Path,
    legend: tuple[Sequence[str], np.ndarray] | None = None,
) -> Path:
    """Rows ``(label, input, overlay, ground-truth colours)`` -> one PNG with a title strip per row and,
    with ``legend = (class names, (K, 3) RGB colours)``, a class-colour legend at the bottom."""
    import cv2

    tiles = []
    for label, rgb, overlay, truth in rows:
        row = np.concatenate([rgb, overlay, truth], axis=1)
        strip = np.full((22, row.shape[1], 3), 255, dtype=np.uint8)
        w = rgb.shape[1]
        for i, title in enumerate((f"{label}: input", "overlay (prediction)", "ground truth")):
            cv2.putText(
                strip, title, (6 + i * w, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA
            )
        tiles.extend([strip, row])
    if legend is not None:
        tiles.append(_legend(legend[0], legend[1], tiles[-1].shape[1]))
    image = np.concatenate(tiles, axis=0)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR)):
        raise ConfigError(f"cannot write {path}")
    return path


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
    presets = load_band_presets(bands if bands is not None else _default_presets(checkpoint is None))
    ablation_ckpt = Path(ablation) if ablation else (_shipped_ablation() if checkpoint is None else None)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    description, recorded = _model_description(ckpt)
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
    matrices = {c: {col: _confusion(len(classes)) for col in COLUMNS} for c in [*conditions, "all"]}
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
    montage = _montage(rows, out / MONTAGE, legend=(classes.names, classes.colors))
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


def _default_presets(shipped_model: bool) -> Path | None:
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
DEMO_TRAIN_COMMAND = "causal-tune train --config config/train/synthetic_small.yaml"
DEMO_PACKAGE_COMMAND = (
    "causal-tune demo --package-model runs/synthetic_small/model.safetensors "
    "--package-to models/demo/causal_tune_demo.safetensors --train-seconds <wall time of the training>"
)


def _describe_trained(train_config: dict[str, Any]) -> tuple[str, str]:
    """``(description, backbone note)`` of a trained demo model, from its recorded training config."""
    model = train_config.get("model") or {}
    backbone = model.get("backbone") or {}
    tuner = model.get("tuner") or {}
    shape = backbone.get("overrides") or {}
    size = f"{shape.get('depth', '?')} blocks, width {shape.get('embed_dim', '?')}, patch 14"
    if backbone.get("weights"):
        what = f"small ViT ({size}) pretrained without labels on synthetic scenes, frozen; NOT DINOv2"
        note = f"pocket ViT pretrained without semantic labels ({backbone['weights']}), embedded; not DINOv2"
    else:
        what = f"small random-init ViT ({size}; NOT DINOv2, frozen random weights)"
        note = "random-init ViT, never trained (frozen random weights), embedded in this file; not DINOv2"
    if tuner.get("operator") == "rein":
        tokens = "Rein-style tokens without the band-pass (the demo's ablation)"
    elif tuner.get("frozen"):
        tokens = "no tokens (decode head only)"
    else:
        tokens = "Causal-Tune tokens"
    description = (
        f"DEMO model: {what} + {tokens} and light head trained on clear synthetic street scenes only "
        "(snow, rain, fog, night unseen); for trying the package, not for real roads"
    )
    return description, note


def package_demo_model(
    trained: str | Path,
    out: str | Path = "models/demo/causal_tune_demo.safetensors",
    train_seconds: float | None = None,
    train_command: str = DEMO_TRAIN_COMMAND,
) -> Path:
    """Turn a trained synthetic checkpoint into the shipped demo model.

    Stores the tensors as float16 (halves the file; loading casts back to float32, and the demo's mIoU
    moves by less than 0.1 point) and labels the file as a demo: description, the recipe that made it,
    the training time and the network input size it was trained at (``user.input_size``, which replay,
    the node and the demo use as their default).

    Args:
        trained: ``model.safetensors`` written by ``causal-tune train`` with an embedded backbone.
        out: Output file.
        train_seconds: Wall time of the training run, recorded in the metadata.
        train_command: The command that trained it, recorded in the metadata.

    Returns:
        The written path.

    Raises:
        CheckpointError: The input is not a loadable checkpoint, or the backbone weights its training
            config names (when it embeds none) cannot be loaded.
    """
    from causal_tune_ros.model.checkpoint import load_checkpoint, read_checkpoint_metadata, save_checkpoint

    meta = read_checkpoint_metadata(trained)
    user = dict(meta.get("user") or {})
    train_config = user.get("train_config") or {}
    weights = ((train_config.get("model") or {}).get("backbone") or {}).get("weights")
    backbone = None
    if weights and not (meta.get("backbone") or {}).get("embedded"):
        from causal_tune_ros.model.dinov2 import DinoV2

        backbone = DinoV2.from_pretrained(weights)  # what it was trained on; embedded below
    model = load_checkpoint(trained, backbone=backbone)
    crop = (train_config.get("augment") or {}).get("crop_size") or list(DEFAULT_SIZE)
    description, backbone_note = _describe_trained(train_config)
    labels = {
        "description": description,
        "demo": True,
        "backbone_note": backbone_note,
        "input_size": [int(crop[0]), int(crop[1])],
        "train_command": train_command,
        "package_command": DEMO_PACKAGE_COMMAND,
        "train_seconds": None if train_seconds is None else round(float(train_seconds), 1),
        "train_conditions": ["clear"],
        "dtype": "float16",
    }
    user.update(labels)
    path = save_checkpoint(
        out,
        model.half(),
        metadata=user,
        include_backbone=True,
        class_names=meta.get("class_names"),
        band=meta.get("train_band"),
    )
    path.chmod(0o644)  # a shipped data file: readable by every user of an installed package
    return path


def run(args: argparse.Namespace) -> int:
    """``causal-tune demo``: run the offline demo, or the live ROS demo with ``--ros``.

    Returns:
        0 on success (errors raise ``CausalTuneError``: exit code 2).
    """
    from causal_tune_ros.synthetic.bag import parse_image_size

    if args.package_model:
        path = package_demo_model(
            args.package_model,
            args.package_to,
            train_seconds=args.train_seconds,
            train_command=args.train_command or DEMO_TRAIN_COMMAND,
        )
        print(f"demo: packaged {args.package_model} -> {path} ({path.stat().st_size / 1e6:.2f} MB)")
        return 0
    segments = parse_segments(args.frames)
    size = parse_image_size(args.size) if args.size else None
    if args.ros:
        return run_ros_demo(args, segments, size)
    result = run_demo(
        args.out,
        checkpoint=args.checkpoint,
        bands=args.bands,
        ablation=args.ablation,
        segments=segments,
        size=size,
        seed=args.seed,
        threads=args.threads,
        progress=not args.quiet,
    )
    print()
    print("mIoU (%) against the synthetic ground truth; the demo model saw only clear scenes in training:")
    print(result.table())
    print()
    print(f"outputs in {result.out_dir}/:")
    for path in (
        result.drive_bag,
        result.segmented_bag,
        result.montage,
        result.video,
        result.out_dir / METRICS,
    ):
        if path is not None:
            print(f"  {path.name}")
    print(f"demo finished in {result.seconds:.1f} s")
    return 0


# ------------------------------------------------------------------------------------------- --ros


def _require_rclpy() -> None:
    # Only a presence check: all rclpy code lives in causal_tune_ros.node.
    if importlib.util.find_spec("rclpy") is None:
        raise ConfigError(
            "--ros needs ROS 2's rclpy: source a ROS 2 install (Jazzy/Humble), or pip install "
            "'causal_tune_ros[ros]' into a venv (see the README); the offline demo needs no ROS"
        )


def _node_command(checkpoint: Path, size: tuple[int, int], params_file: Path | None = None) -> list[str]:
    """Command line that starts the real segmentation node on the demo topics (band presets from
    ``params_file``, a ROS 2 parameters file, when given)."""
    h, w = size
    extra = ["--params-file", str(params_file)] if params_file is not None else []
    return [
        sys.executable,
        "-m",
        "causal_tune_ros.node.segmentation_node",
        "--ros-args",
        "-r",
        "image:=/camera/image_raw",
        "-r",
        "camera_info:=/camera/camera_info",
        "-r",
        "weather:=/weather",
        "-p",
        "use_sim_time:=true",
        "-p",
        "backend:=eager",
        "-p",
        f"model.checkpoint:={checkpoint}",
        "-p",
        f"model.input_height:={h - h % 14 or 14}",
        "-p",
        f"model.input_width:={w - w % 14 or 14}",
        "-p",
        "weather.mode:=topic",
        "-p",
        "qos.reliability:=reliable",
        *extra,
    ]


def run_ros_demo(
    args: argparse.Namespace, segments: Sequence[tuple[str, int]], size: tuple[int, int] | None
) -> int:
    """Start the segmentation node and play the synthetic drive to it on live topics.

    The player publishes every bag message as raw CDR at its recorded time (scaled by ``--rate``) and
    ``/clock`` (the node runs with ``use_sim_time``), like ``ros2 bag play --clock``. It counts what the
    node publishes and prints it at the end.

    Returns:
        0 when the node produced outputs, 1 otherwise.

    Raises:
        ConfigError: rclpy is missing.
    """
    _require_rclpy()
    from causal_tune_ros.replay.command import default_checkpoint
    from causal_tune_ros.synthetic.bag import drive_frames, write_drive

    ckpt = Path(args.checkpoint) if args.checkpoint else default_checkpoint()
    _, recorded = _model_description(ckpt)
    height, width = size or recorded or DEFAULT_SIZE
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    conditions = [c for c, _ in segments]
    drive = list(drive_frames(conditions, dict(segments), height, width, seed=args.seed))
    bag = out / DRIVE_BAG
    write_drive(bag, conditions, dict(segments), size=(height, width), overwrite=True, drive=drive)
    import yaml

    from causal_tune_ros.weather import load_band_presets

    chosen = args.bands if args.bands else _default_presets(not args.checkpoint)
    params_file = None
    if chosen is not None:
        # The presets as a ROS 2 parameters file, whatever layout the given file has.
        bands = {c: {"low": b.low, "high": b.high} for c, b in load_band_presets(chosen).items()}
        params_file = out / "demo_bands.yaml"
        document = {"/**": {"ros__parameters": {"weather": {"bands": bands}}}}
        params_file.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    command = _node_command(ckpt, (height, width), params_file)
    print("demo --ros: starting the node:\n  " + " ".join(command))
    node = subprocess.Popen(command)
    try:
        from causal_tune_ros.node.bag_player import play_bag_to_node

        counts = play_bag_to_node(bag, rate=args.rate, loop=args.loop, node_process=node)
    finally:
        node.terminate()
        try:
            node.wait(timeout=10)
        except subprocess.TimeoutExpired:
            node.kill()
    print("demo --ros: messages the node published during the drive:")
    for topic, n in sorted(counts.items()):
        print(f"  {topic}: {n}")
    return 0 if any(n for t, n in counts.items() if t.endswith("class_mask")) else 1
