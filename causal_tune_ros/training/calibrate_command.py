"""``causal-tune calibrate``: choose a band-pass preset per weather condition on labelled validation images.

Example::

    causal-tune calibrate --checkpoint models/demo/causal_tune_demo.safetensors --data synthetic::val \\
        --data-option num_samples=100 --out weather_bands_calibrated.yaml

Sweeps every ``(r_low, r_high)`` of ``--lows`` x ``--highs`` (plus the checkpoint's training band) on
every condition in one pass over the data, keeps per condition the band with the best mIoU if it beats
the training band (ties keep the training band), and writes the presets with every score beside them.
The file is a ROS 2 parameters file (``segmentation_node --ros-args --params-file FILE``) and the
presets file of ``causal-tune replay --bands FILE`` and ``causal-tune demo --bands FILE``.
"""

from __future__ import annotations

import argparse

HELP = "sweep band-pass (r_low, r_high) per weather condition on labelled data, write calibrated presets"


def _floats(text: str) -> list[float]:
    """``"0.1,0.2"`` -> ``[0.1, 0.2]``."""
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None
    if not values:
        raise argparse.ArgumentTypeError("expected at least one number")
    return values


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the ``calibrate`` options."""
    from causal_tune_ros.training.calibrate import DEFAULT_HIGHS, DEFAULT_LOWS
    from causal_tune_ros.training.eval_command import _pair

    parser.add_argument("--checkpoint", required=True, help="a Causal-Tune .safetensors checkpoint")
    parser.add_argument("--backbone", help="backbone weights when the checkpoint does not embed one")
    parser.add_argument(
        "--data",
        required=True,
        metavar="NAME[:ROOT[:SPLIT]]",
        help="labelled validation set with weather conditions, e.g. synthetic::val or acdc:/data/acdc:val",
    )
    parser.add_argument(
        "--data-option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="keyword argument for the data-set reader (repeatable), e.g. num_samples=100",
    )
    parser.add_argument("--out", required=True, help="presets YAML to write")
    for edge, values in (("low", DEFAULT_LOWS), ("high", DEFAULT_HIGHS)):
        parser.add_argument(
            f"--{edge}s",
            type=_floats,
            default=list(values),
            metavar="R,R,...",
            help=f"r_{edge} values to sweep (default: %(default)s)",
        )
    parser.add_argument(
        "--min-gain",
        type=float,
        default=0.1,
        metavar="POINTS",
        help="mIoU points a band must beat the training band by to replace it (default: %(default)s, the "
        "precision the file prints: smaller differences count as ties)",
    )
    parser.add_argument(
        "--input-size",
        type=_pair,
        help="resize images into an H,W box before inference (default: native size)",
    )
    parser.add_argument("--batch-size", type=int, default=1, help="images per forward pass")
    parser.add_argument("--max-samples", type=int, default=None, help="use the first N samples only")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    """Calibrate and write the presets; returns 0 (errors raise ``CausalTuneError``)."""
    import torch

    from causal_tune_ros.band import Band
    from causal_tune_ros.classes import load_classes
    from causal_tune_ros.model.checkpoint import load_checkpoint, read_checkpoint_metadata
    from causal_tune_ros.training.calibrate import band_grid, calibrate_bands, write_presets
    from causal_tune_ros.training.config import DatasetConfig
    from causal_tune_ros.training.eval_command import (
        _default_synthetic_size,
        _parse_options,
        _resolve_checkpoint,
        parse_data_spec,
    )
    from causal_tune_ros.training.trainer import build_dataset_from_config
    from causal_tune_ros.weather import load_band_presets

    ckpt = _resolve_checkpoint(args.checkpoint)
    meta = read_checkpoint_metadata(ckpt)
    train_band = Band(*meta["train_band"]) if meta.get("train_band") else Band()
    bands = band_grid(args.lows, args.highs, train_band)
    name, root, split = parse_data_spec(args.data)
    ds_cfg = DatasetConfig(name=name, root=root, split=split, options=_parse_options(args.data_option))
    _default_synthetic_size(ds_cfg, ckpt)
    dataset = build_dataset_from_config(ds_cfg, f"--data {args.data}")
    names = meta.get("class_names")
    classes = load_classes() if names is None else None
    class_names = tuple(names) if names is not None else classes.names
    device = "cuda" if args.device == "auto" and torch.cuda.is_available() else args.device
    device = "cpu" if device == "auto" else device
    backbone = None
    if args.backbone:
        from causal_tune_ros.model.dinov2 import DinoV2

        backbone = DinoV2.from_pretrained(args.backbone)
    model = load_checkpoint(ckpt, backbone=backbone).to(device)
    if not args.quiet:
        print(f"calibrate: {len(bands)} bands x {len(dataset)} images of {args.data}")
    calibration = calibrate_bands(
        model,
        dataset,
        bands,
        train_band,
        min_gain=args.min_gain / 100.0,
        class_names=class_names,
        ignore_index=255 if classes is None else classes.ignore_id,
        input_size=args.input_size,
        batch_size=args.batch_size,
        max_samples=args.max_samples,
        device=device,
        progress=not args.quiet,
        dataset_name=args.data,
    )
    options = "".join(f" --data-option {o}" for o in args.data_option)
    path = write_presets(args.out, calibration, source=f"{ckpt.name} on --data {args.data}{options}")
    load_band_presets(path)  # what the node, replay and demo will read: check it once here
    for cond, band in calibration.chosen.items():
        if cond in calibration.scores:
            table = calibration.scores[cond]
            print(
                f"  {cond:<6} band {band.low:g}-{band.high:g}: mIoU {100 * table[band]:.1f} % "
                f"(training band {100 * table[train_band]:.1f} %)"
            )
        else:
            print(f"  {cond:<6} no validation images: training band {band.low:g}-{band.high:g}")
    print(f"wrote {path}")
    return 0
