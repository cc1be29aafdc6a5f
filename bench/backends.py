"""CPU latency of the inference backends on one model and input, plus int8 accuracy and post-processing.

Usage::

    python bench/backends.py [--arch vits14] [--size 518x1036] [--reps 7] [--threads 2]
                             [--exporter-study] [--in-graph] [--pipeline] [--keep DIR]

Builds a random-weight Causal-Tune segmenter (DINOv2 ``--arch``, all layers tuned, 100 tokens, rank 16,
LightHead, 19 classes), saves it as a self-contained checkpoint, exports it with ``export_artefact`` (the
code path of ``causal-tune export``) and loads every backend through ``create_backend``. Then, in
interleaved rounds (the order rotates every round; the machine is shared and noisy, so only ratios within
this run mean anything), it times ``backend.infer`` on the same image and band:

- ``eager fp32``: PyTorch (the reference);
- ``onnxruntime fp32``: our graph (dynamo exporter, opset 20 Gelu, attention as ORT MultiHeadAttention);
- ``onnxruntime int8``: the same graph, backbone Linear layers dynamically quantised.

``--exporter-study`` adds the graphs the exporter choice was made from: ``dynamo opset 18`` (GELU
decomposed into Div/Erf/Add/Mul/Mul, attention as MatMul/Softmax/MatMul) and ``dynamo opset 20`` (native
Gelu, attention still decomposed). ``--in-graph`` compares bilinear resize + argmax inside the ONNX graph
with logits out of the graph + the pipeline's numpy post-processing. ``--pipeline`` measures the three
upsampling strategies of :mod:`causal_tune_ros.pipeline` at 720p and 1080p camera sizes.

Accuracy: class-id agreement of int8 (and fp32) with eager on a synthetic street scene
(``causal_tune_ros.synthetic.render_scene``) resized to the input, and on a smooth random image.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import torch

from causal_tune_ros.backends import BackendSpec, create_backend
from causal_tune_ros.backends.cache import is_valid, model_hash
from causal_tune_ros.backends.export import export_artefact, export_onnx_graph, load_segmenter
from causal_tune_ros.backends.onnxruntime_backend import make_session
from causal_tune_ros.band import Band
from causal_tune_ros.model.causal_tune import CausalTuneSegmenter
from causal_tune_ros.model.checkpoint import save_checkpoint
from causal_tune_ros.model.dinov2 import DinoV2
from causal_tune_ros.model.heads import LightHead
from causal_tune_ros.pipeline import upsample_argmax


def build_checkpoint(arch: str, folder: Path, seed: int = 0) -> Path:
    """Random-weight segmenter saved with its backbone embedded."""
    torch.manual_seed(seed)
    backbone = DinoV2(arch)
    model = CausalTuneSegmenter(backbone, LightHead(backbone.embed_dim, 19)).eval()
    return save_checkpoint(folder / f"ct_{arch}_random.safetensors", model, include_backbone=True)


def natural_image(height: int, width: int, seed: int = 3) -> np.ndarray:
    """(1, 3, H, W) float32: a synthetic street scene if the renderer exists, else smooth noise."""
    try:
        from causal_tune_ros.synthetic import render_scene

        rgb = render_scene(seed, "clear", height, width).image
    except ImportError:
        rng = np.random.default_rng(seed)
        small = rng.random((height // 16 + 1, width // 16 + 1, 3), dtype=np.float32)
        rgb = (cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC).clip(0, 1) * 255).astype(
            np.uint8
        )
    return np.ascontiguousarray(rgb.transpose(2, 0, 1)[None], dtype=np.float32) / 255.0


def smooth_image(height: int, width: int, seed: int = 5) -> np.ndarray:
    """(1, 3, H, W) float32 smooth random image."""
    rng = np.random.default_rng(seed)
    small = rng.random((height // 32 + 2, width // 32 + 2, 3), dtype=np.float32)
    img = cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC).clip(0, 1)
    return np.ascontiguousarray(img.transpose(2, 0, 1)[None])


def interleaved(fns: dict[str, Callable[[], object]], reps: int) -> dict[str, list[float]]:
    """Time every function ``reps`` times, rotating the order each round (after one warm-up each)."""
    for fn in fns.values():
        fn()
    names = list(fns)
    times: dict[str, list[float]] = {n: [] for n in names}
    for r in range(reps):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            t0 = time.perf_counter()
            fns[name]()
            times[name].append(time.perf_counter() - t0)
    return times


def report(times: dict[str, list[float]], reference: str) -> None:
    """Median latency, FPS and speed ratio to ``reference`` (higher = faster)."""
    ref = statistics.median(times[reference])
    print(f"{'variant':42s} {'median ms':>10s} {'FPS':>7s} {'speed vs ' + reference:>22s}")
    for name, t in times.items():
        med = statistics.median(t)
        print(f"{name:42s} {1000 * med:10.1f} {1 / med:7.2f} {ref / med:21.2f}x")


def agreement(a: np.ndarray, b: np.ndarray) -> float:
    """Fraction of pixels whose argmax class agrees."""
    return float((a.argmax(1) == b.argmax(1)).mean())


class _InGraphPost(torch.nn.Module):
    """Segmenter + bilinear resize of the logits to the input size + argmax, all in the graph."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, images: torch.Tensor, band: torch.Tensor) -> torch.Tensor:
        logits = self.model(images, band)
        up = torch.nn.functional.interpolate(
            logits, size=images.shape[-2:], mode="bilinear", align_corners=False
        )
        return up.argmax(1).to(torch.uint8).float()


def upsampling_variants(logits: np.ndarray, height: int, width: int) -> dict[str, Callable[[], np.ndarray]]:
    """The three ways to get (height, width) class ids from (K, h, w) logits."""

    def full() -> np.ndarray:
        up = cv2.resize(logits.transpose(1, 2, 0), (width, height), interpolation=cv2.INTER_LINEAR)
        return up.argmax(axis=2).astype(np.uint8)

    def nearest() -> np.ndarray:
        low = logits.argmax(0).astype(np.uint8)
        return cv2.resize(low, (width, height), interpolation=cv2.INTER_NEAREST)

    def ours() -> np.ndarray:
        return upsample_argmax(logits, (height, width))

    return {"bilinear logits + argmax (reference)": full, "argmax + nearest": nearest, "ours (exact)": ours}


def pipeline_study(reps: int) -> None:
    """Upsampling strategies: speed and agreement with full bilinear-logit upsampling (the reference)."""
    from causal_tune_ros.synthetic import render_scene

    rng = np.random.default_rng(0)
    k, lh, lw = 19, 518 // 4, 1036 // 4
    print(f"\n## post-processing: logits {k}x{lh}x{lw} -> camera resolution (synthetic scene, soft logits)")
    for height, width in ((720, 1280), (1080, 1920)):
        labels = render_scene(5, "clear", height, width).labels
        onehot = (labels[..., None] == np.arange(k)).astype(np.float32)
        prob = np.stack(
            [cv2.resize(onehot[..., c], (lw, lh), interpolation=cv2.INTER_AREA) for c in range(k)], -1
        )
        logits = np.log(prob + 0.02) + rng.normal(0, 0.1, prob.shape).astype(np.float32)
        logits = np.ascontiguousarray(logits.transpose(2, 0, 1))
        valid = labels != 255

        fns = upsampling_variants(logits, height, width)
        times = interleaved(fns, reps)
        ref = fns["bilinear logits + argmax (reference)"]()
        print(f"\n{height}x{width}")
        report(times, "bilinear logits + argmax (reference)")
        for name, fn in fns.items():
            out = fn()
            print(
                f"  {name:40s} agreement with reference {100 * (out == ref).mean():7.3f} %, "
                f"with true labels {100 * (out == labels)[valid].mean():6.2f} %"
            )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="vits14")
    parser.add_argument("--size", default="518x1036")
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--exporter-study", action="store_true")
    parser.add_argument("--in-graph", action="store_true")
    parser.add_argument("--pipeline", action="store_true")
    parser.add_argument("--pipeline-only", action="store_true")
    parser.add_argument("--keep", type=Path, default=None, help="keep the checkpoint and artefacts here")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    print(f"# bench/backends.py {' '.join(sys.argv[1:])}")
    print(f"torch {torch.__version__}, threads {args.threads}")
    if args.pipeline_only:
        pipeline_study(args.reps)
        return 0

    h, w = (int(v) for v in args.size.lower().split("x"))
    folder = args.keep or Path(tempfile.mkdtemp(prefix="bench_backends_"))
    folder.mkdir(parents=True, exist_ok=True)
    checkpoint = build_checkpoint(args.arch, folder)
    band = Band()
    spec = BackendSpec(
        name="eager",
        checkpoint=checkpoint,
        input_size=(h, w),
        cache_dir=folder / "cache",
        num_threads=args.threads,
    )
    exported = {}
    for precision in ("fp32", "int8"):
        path = folder / f"{precision}.onnx"
        expected = {"precision": precision, "input_size": (h, w), "model_hash": model_hash(checkpoint)}
        t0 = time.perf_counter()
        if not is_valid(path, expected)[0]:  # --keep DIR reuses a previous run's exports
            export_artefact(checkpoint, path, (h, w), "onnx", precision)
        exported[precision] = path
        print(f"{args.arch} {h}x{w}: {precision} export {time.perf_counter() - t0:.1f} s ({path})")
    fp32, int8 = exported["fp32"], exported["int8"]

    backends = {
        "eager fp32": create_backend(spec),
        "onnxruntime fp32": create_backend(spec.with_changes(name="onnxruntime", artefact=fp32)),
        "onnxruntime int8": create_backend(
            spec.with_changes(name="onnxruntime", precision="int8", artefact=int8)
        ),
    }
    for backend in backends.values():
        backend.load()
    images = natural_image(h, w)
    fns: dict[str, Callable[[], object]] = {
        name: (lambda b=b: b.infer(images, band)) for name, b in backends.items()
    }

    if args.exporter_study:
        model = load_segmenter(checkpoint)
        for name, opset in (
            ("dynamo opset 18 (decomposed GELU + attention)", 18),
            ("dynamo opset 20 (Gelu op)", 20),
        ):
            path = export_onnx_graph(
                model, folder / f"study_opset{opset}.onnx", (h, w), opset=opset, fused_attention=False
            )
            session = make_session(path, "cpu", args.threads)
            fns[name] = lambda s=session: s.run(
                ["logits"], {"images": images, "band": np.float32(band.as_tuple())}
            )
    if args.in_graph:
        model = load_segmenter(checkpoint)
        path = export_onnx_graph(_InGraphPost(model), folder / "in_graph.onnx", (h, w))
        session = make_session(path, "cpu", args.threads)
        ort32 = backends["onnxruntime fp32"]
        fns["fp32 + resize/argmax in graph"] = lambda: session.run(
            ["logits"], {"images": images, "band": np.float32(band.as_tuple())}
        )
        fns["fp32 + numpy post-processing (ours)"] = lambda: upsample_argmax(
            ort32.infer(images, band)[0], (h, w)
        )

    times = interleaved(fns, args.reps)
    print()
    report(times, "eager fp32")

    print("\n## accuracy vs eager fp32 (class-id agreement at logit resolution; max |logit diff|)")
    for label, img in (("synthetic street scene", images), ("smooth random image", smooth_image(h, w))):
        for other_band in (band, Band(0.25, 0.6)):
            ref = backends["eager fp32"].infer(img, other_band)
            for name in ("onnxruntime fp32", "onnxruntime int8"):
                out = backends[name].infer(img, other_band)
                print(
                    f"  {label:24s} band {other_band}  {name:18s} "
                    f"agreement {100 * agreement(out, ref):7.3f} %  max|diff| {np.abs(out - ref).max():.2e}"
                )
    if args.pipeline:
        pipeline_study(args.reps)
    return 0


if __name__ == "__main__":
    sys.exit(main())
