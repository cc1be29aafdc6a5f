"""``causal-tune export``: write an ONNX graph or a TensorRT program (plus its JSON sidecar) for one input
size and precision.

Examples::

    causal-tune export --checkpoint ct.safetensors --backbone dinov2_vits14_pretrain.pth \\
        --size 518x1036 --format onnx --precision int8 -o ct_518x1036_int8.onnx
    causal-tune export --checkpoint ct.safetensors --backbone dinov2_vits14_pretrain.pth \\
        --size 518x1036 --format tensorrt --precision fp16 -o ct_518x1036_fp16.ep
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from causal_tune_ros.backends.base import PRECISIONS, parse_size
from causal_tune_ros.errors import ConfigError

HELP = "export a checkpoint to ONNX (fp32/fp16/int8) or a TensorRT program for one input size"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the export options."""
    from causal_tune_ros.backends.export import DEFAULT_OPSET, FORMATS

    parser.add_argument(
        "--checkpoint", required=True, type=Path, help="Causal-Tune checkpoint (.safetensors)"
    )
    parser.add_argument(
        "--backbone",
        type=Path,
        default=None,
        help="DINOv2 weights file or Hugging Face folder (omit when the checkpoint embeds its backbone)",
    )
    parser.add_argument("--size", required=True, help="network input HxW, multiples of 14 (e.g. 518x1036)")
    parser.add_argument("--format", choices=FORMATS, default="onnx", help="artefact format (default: onnx)")
    parser.add_argument(
        "--precision",
        choices=PRECISIONS,
        default="fp32",
        help="fp32; fp16 (TensorRT, or ONNX for the CUDA provider); int8 (ONNX dynamic quantisation, CPU)",
    )
    parser.add_argument(
        "-o", "--output", required=True, type=Path, help="artefact path; sidecar is <path>.json"
    )
    parser.add_argument(
        "--opset", type=int, default=DEFAULT_OPSET, help=f"ONNX opset (default {DEFAULT_OPSET})"
    )
    parser.add_argument(
        "--portable",
        action="store_true",
        help="ONNX with standard ops only (no onnxruntime MultiHeadAttention; slower in onnxruntime)",
    )
    parser.add_argument(
        "--no-verify",
        action="store_true",
        help="skip comparing the ONNX graph with PyTorch on a random image after export",
    )


def run(args: argparse.Namespace) -> int:
    """Export, print the sidecar facts and (ONNX fp32/int8) the agreement with PyTorch.

    Returns:
        0 on success.

    Raises:
        ConfigError: Bad size / format / precision combination.
        CheckpointError: Unreadable or mismatching weights.
        BackendError: Export failure or missing library.
    """
    from causal_tune_ros.backends.export import (
        describe_artefact,
        export_artefact,
        load_segmenter,
        verify_onnx,
    )

    size = parse_size(args.size)
    if args.format == "tensorrt" and args.precision == "int8":
        raise ConfigError(
            "TensorRT export builds fp16 or fp32 (int8 needs calibration); use --precision fp16"
        )
    started = time.perf_counter()
    artefact = export_artefact(
        args.checkpoint,
        args.output,
        size,
        args.format,
        args.precision,
        backbone=args.backbone,
        opset=args.opset,
        fused_attention=not args.portable,
    )
    print(describe_artefact(artefact))
    print(f"export time: {time.perf_counter() - started:.1f} s")
    if args.format == "onnx" and args.precision != "fp16" and not args.no_verify:
        check = verify_onnx(artefact, load_segmenter(args.checkpoint, args.backbone))
        print(
            f"check vs PyTorch (random image): max |logit diff| {check['max_abs_diff']:.2e}, "
            f"class agreement {100 * check['class_agreement']:.2f} %"
        )
    return 0
