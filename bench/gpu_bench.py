"""GPU latency and FPS: TensorRT / compiled / eager fp16 vs eager fp32, Causal-Tune on ViT-S/14 and ViT-B/14,
plus post-processing (torch on the GPU vs numpy) and the whole pipeline against the network alone.

Usage (on a machine with CUDA; TensorRT rows need torch_tensorrt)::

    python bench/gpu_bench.py [--archs vits14,vitb14] [--size 518x1036] [--iters 50] [--warmup 10]
                              [--keep DIR] [--no-compiled] [--camera 1080x1920]

For each architecture: a random-weight Causal-Tune segmenter (all layers tuned, 100 tokens, rank 16,
LightHead, 19 classes; weights do not change the timing) is saved as a checkpoint and run as

- ``eager fp32`` and ``eager fp16``: :class:`~causal_tune_ros.backends.eager.EagerBackend` on CUDA;
- ``compiled fp16``: :class:`~causal_tune_ros.backends.compiled.CompiledBackend` (inductor, CUDA graphs;
  compile time reported);
- ``tensorrt fp16``: :class:`~causal_tune_ros.backends.tensorrt_backend.TensorRTBackend`, the engine built
  into a cache folder (build time reported) exactly as the node builds it.

Two timings per variant, in interleaved rounds (the order rotates every round):

- ``gpu ms``: the model alone on a device-resident input, timed with CUDA events (what the GPU spends);
- ``infer ms``: ``backend.infer`` from a numpy image to numpy logits (host copies included; what the
  pipeline sees).

Then, per variant, ``pipeline ms``: ``SegmentationPipeline.process`` on a camera-sized image (default
1080x1920; post-processing on the GPU), against ``gpu ms``. Finally the post-processing alone at camera
resolution: the numpy path against the torch path on the device (results on the host in both).

Output: the GPU name, library versions, median latencies, FPS and speed-ups over eager fp32, and the
agreement of fp16 / compiled / TensorRT class ids with eager fp32. Without CUDA it says so and exits 2
(``--cpu-smoke`` runs the eager part on the CPU with a tiny model, to check the script itself).
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
from causal_tune_ros.backends.base import library_version
from causal_tune_ros.band import Band
from causal_tune_ros.model.causal_tune import CausalTuneSegmenter
from causal_tune_ros.model.checkpoint import save_checkpoint
from causal_tune_ros.model.dinov2 import DinoV2
from causal_tune_ros.model.heads import LightHead
from causal_tune_ros.pipeline import SegmentationPipeline


def build_checkpoint(arch: str, folder: Path, tiny: bool = False) -> Path:
    """Random-weight segmenter with the backbone embedded."""
    torch.manual_seed(0)
    backbone = DinoV2("custom", embed_dim=64, depth=2, num_heads=4) if tiny else DinoV2(arch)
    model = CausalTuneSegmenter(backbone, LightHead(backbone.embed_dim, 19)).eval()
    return save_checkpoint(folder / f"ct_{arch}_random.safetensors", model, include_backbone=True)


def time_gpu(fn: Callable[[], object], device: str) -> float:
    """Seconds of one call: CUDA events on the GPU, wall clock on the CPU."""
    if device != "cuda":
        t0 = time.perf_counter()
        fn()
        return time.perf_counter() - t0
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    fn()
    end.record()
    end.synchronize()
    return start.elapsed_time(end) / 1000.0


def device_callable(backend, images: np.ndarray, band: Band) -> Callable[[], object]:
    """The backend's model on a device-resident input (no host copies)."""
    device = torch.device(backend.spec.device)
    x = torch.from_numpy(images).to(device)
    b = torch.tensor(band.as_tuple(), dtype=torch.float32, device=device)
    module = backend.module if backend.name == "tensorrt" else backend.model  # compiled: the compiled one
    if backend.name != "tensorrt" and backend.spec.precision == "fp16":
        x = x.half()

    def run() -> object:
        with torch.inference_mode():
            return module(x, b)

    return run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archs", default="vits14,vitb14")
    parser.add_argument("--size", default="518x1036")
    parser.add_argument("--iters", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--keep", type=Path, default=None, help="keep checkpoints and engines here")
    parser.add_argument("--cpu-smoke", action="store_true", help="no GPU: run the eager part tiny on the CPU")
    parser.add_argument("--no-compiled", action="store_true", help="skip the compiled (torch.compile) rows")
    parser.add_argument("--camera", default="1080x1920", help="camera image HxW for pipeline/post-processing")
    args = parser.parse_args(argv)

    cuda = torch.cuda.is_available()
    if not cuda and not args.cpu_smoke:
        print(
            "gpu_bench: no CUDA device (torch.cuda.is_available() is False); nothing to measure",
            file=sys.stderr,
        )
        return 2
    device = "cuda" if cuda else "cpu"
    h, w = (14, 28) if args.cpu_smoke and not cuda else tuple(int(v) for v in args.size.lower().split("x"))
    has_trt = cuda and library_version("torch_tensorrt") is not None
    gpu = torch.cuda.get_device_name() if cuda else "none (CPU smoke run)"
    print(f"# bench/gpu_bench.py {' '.join(sys.argv[1:])}")
    print(f"GPU: {gpu}")
    print(
        f"torch {torch.__version__}, CUDA {torch.version.cuda}, "
        f"torch_tensorrt {library_version('torch_tensorrt')}, tensorrt {library_version('tensorrt')}"
    )
    folder = args.keep or Path(tempfile.mkdtemp(prefix="gpu_bench_"))
    folder.mkdir(parents=True, exist_ok=True)
    band = Band()
    rng = np.random.default_rng(0)
    images = rng.random((1, 3, h, w), dtype=np.float32)

    for arch in args.archs.split(","):
        checkpoint = build_checkpoint(arch, folder, tiny=args.cpu_smoke and not cuda)
        base = BackendSpec(
            name="eager", checkpoint=checkpoint, input_size=(h, w), device=device, cache_dir=folder
        )
        variants = {"eager fp32": base}
        if cuda:
            variants["eager fp16"] = base.with_changes(precision="fp16")
            if not args.no_compiled:
                variants["compiled fp16"] = base.with_changes(name="compiled", precision="fp16")
        if has_trt:
            variants["tensorrt fp16"] = base.with_changes(name="tensorrt", precision="fp16")
        backends = {}
        for name, spec in variants.items():
            started = time.perf_counter()
            backend = create_backend(spec)
            backend.load()
            backends[name] = backend
            print(f"{arch} {h}x{w}: {name} ready in {time.perf_counter() - started:.1f} s")
        if not has_trt:
            print(f"{arch}: tensorrt fp16 skipped (needs CUDA and torch_tensorrt)")

        runs = {name: device_callable(b, images, band) for name, b in backends.items()}
        infers = {name: (lambda b=b: b.infer(images, band)) for name, b in backends.items()}
        for fn in [*runs.values(), *infers.values()]:
            for _ in range(args.warmup):
                fn()
        gpu_t: dict[str, list[float]] = {n: [] for n in runs}
        infer_t: dict[str, list[float]] = {n: [] for n in runs}
        names = list(runs)
        for i in range(args.iters):
            for name in names[i % len(names) :] + names[: i % len(names)]:
                gpu_t[name].append(time_gpu(runs[name], device))
                t0 = time.perf_counter()
                infers[name]()
                infer_t[name].append(time.perf_counter() - t0)

        reference = backends["eager fp32"].infer(images, band)
        ref_ms = statistics.median(gpu_t["eager fp32"])
        print(f"\n{arch} {h}x{w} on {gpu}")
        print(
            f"{'variant':16s} {'gpu ms':>8s} {'FPS':>7s} {'speed-up':>9s} {'infer ms':>9s} "
            f"{'class agreement':>16s}"
        )
        for name in names:
            med, inf = statistics.median(gpu_t[name]), statistics.median(infer_t[name])
            agree = float((backends[name].infer(images, band).argmax(1) == reference.argmax(1)).mean())
            print(
                f"{name:16s} {1000 * med:8.2f} {1 / med:7.1f} {ref_ms / med:8.2f}x {1000 * inf:9.2f} "
                f"{100 * agree:15.2f}%"
            )
        camera = camera_image(args.camera, args.cpu_smoke and not cuda)
        print(f"\n{arch}: pipeline (image {camera.shape[1]}x{camera.shape[0]} in -> all outputs on the host)")
        print(f"{'variant':16s} {'pipeline ms':>12s} {'gpu ms':>8s} {'ratio':>7s}")
        for name in names:
            pipe = SegmentationPipeline(backends[name])
            for _ in range(args.warmup):
                pipe.process(camera, band)
            totals = []
            for _ in range(args.iters):
                t0 = time.perf_counter()
                pipe.process(camera, band)
                totals.append(time.perf_counter() - t0)
            med, net = statistics.median(totals), statistics.median(gpu_t[name])
            print(f"{name:16s} {1000 * med:12.2f} {1000 * net:8.2f} {med / net:6.2f}x")
        for backend in backends.values():
            backend.close()
        if cuda:
            torch.cuda.empty_cache()
    postprocess_bench(args.camera, device, args.iters, args.warmup, tiny=args.cpu_smoke and not cuda)
    return 0


def camera_image(size: str, tiny: bool) -> np.ndarray:
    """A smooth random (H, W, 3) uint8 camera image."""
    h, w = (60, 120) if tiny else (int(v) for v in size.lower().split("x"))
    rng = np.random.default_rng(1)
    small = rng.integers(0, 256, (h // 16 + 2, w // 16 + 2, 3), dtype=np.uint8)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


def postprocess_bench(size: str, device: str, iters: int, warmup: int, tiny: bool) -> None:
    """Post-processing alone at camera resolution: numpy on the host vs torch on ``device``."""
    from causal_tune_ros.postprocess_torch import TorchPostprocessor

    rgb = camera_image(size, tiny)
    k, h, w = (19, 8, 16) if tiny else (19, 129, 259)  # logits of a 518x1036 input
    rng = np.random.default_rng(2)
    blobs = rng.normal(size=(k, h // 8 + 2, w // 8 + 2)).astype(np.float32)
    logits = np.stack([cv2.resize(b, (w, h), interpolation=cv2.INTER_CUBIC) for b in blobs])
    pipe = SegmentationPipeline(create_backend("eager", input_size=(14, 28)), postprocess="numpy")
    post = TorchPostprocessor(pipe._palette, pipe.drivable_ids, pipe.overlay_alpha, "bilinear", device)
    on_device = torch.from_numpy(logits).to(device)
    runs = {
        "numpy (host)": lambda: pipe._postprocess(logits, rgb, True, True),
        f"torch ({device})": lambda: post(on_device, rgb, True, True),
    }
    times: dict[str, list[float]] = {name: [] for name in runs}
    for fn in runs.values():
        for _ in range(warmup):
            fn()
    for _ in range(iters):
        for name, fn in runs.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    same = np.array_equal(runs["numpy (host)"]()[0], runs[f"torch ({device})"]()[0])
    ref = statistics.median(times["numpy (host)"])
    print(f"\npost-processing at {rgb.shape[1]}x{rgb.shape[0]}, {k} classes from {h}x{w} logits")
    for name, values in times.items():
        med = statistics.median(values)
        print(f"{name:16s} {1000 * med:8.2f} ms {ref / med:7.2f}x")
    print(f"class ids identical: {same}")


if __name__ == "__main__":
    sys.exit(main())
