"""GPU latency and FPS: TensorRT fp16 vs eager fp16 vs eager fp32, Causal-Tune on ViT-S/14 and ViT-B/14.

Usage (on a machine with CUDA and torch_tensorrt)::

    python bench/gpu_bench.py [--archs vits14,vitb14] [--size 518x1036] [--iters 50] [--warmup 10]
                              [--keep DIR]

For each architecture: a random-weight Causal-Tune segmenter (all layers tuned, 100 tokens, rank 16,
LightHead, 19 classes; weights do not change the timing) is saved as a checkpoint and run as

- ``eager fp32`` and ``eager fp16``: :class:`~causal_tune_ros.backends.eager.EagerBackend` on CUDA;
- ``tensorrt fp16``: :class:`~causal_tune_ros.backends.tensorrt_backend.TensorRTBackend`, the engine built
  into a cache folder (build time reported) exactly as the node builds it.

Two timings per variant, in interleaved rounds (the order rotates every round):

- ``gpu ms``: the model alone on a device-resident input, timed with CUDA events (what the GPU spends);
- ``infer ms``: ``backend.infer`` from a numpy image to numpy logits (host copies included; what the
  pipeline sees).

Output: the GPU name, library versions, median latencies, FPS and speed-ups over eager fp32, and the
agreement of fp16 / TensorRT class ids with eager fp32. Without CUDA it says so and exits 2 (``--cpu-smoke``
runs the eager part on the CPU with a tiny model, to check the script itself).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from causal_tune_ros.backends import BackendSpec, create_backend
from causal_tune_ros.backends.base import library_version
from causal_tune_ros.band import Band
from causal_tune_ros.model.causal_tune import CausalTuneSegmenter
from causal_tune_ros.model.checkpoint import save_checkpoint
from causal_tune_ros.model.dinov2 import DinoV2
from causal_tune_ros.model.heads import LightHead


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
    module = backend.module if backend.name == "tensorrt" else backend.model
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
        for backend in backends.values():
            backend.close()
        if cuda:
            torch.cuda.empty_cache()
    return 0


if __name__ == "__main__":
    sys.exit(main())
