"""Checks of the GPU paths that a CUDA machine without TensorRT can run; writes a JSON + Markdown report.

Usage::

    python bench/gpu_check.py --out DIR [--dry-run] [--size 112x224]

Checks (each reported as pass / fail / skip with details, never stopping the others):

- ``imports``: the modules the package needs (a missing one is named, not a crash);
- ``eager_fp16``: eager CUDA fp16 against eager fp32 (class agreement);
- ``compiled``: the ``compiled`` backend (inductor, CUDA graphs) against eager, and that switching the band
  does not recompile (dynamo's graph counter);
- ``export``: the ``torch.export`` graph Torch-TensorRT's dynamo frontend consumes: static shapes, the band a
  graph input, no graph breaks (``torch._dynamo.explain``), same logits as eager;
- ``postprocess``: GPU post-processing against the numpy path at camera resolution (identical class ids);
- ``batch``: several cameras in one ``process_batch`` against one ``process`` per camera.

``--dry-run`` runs the same code on the CPU with a tiny model (export in fp32) and skips what needs CUDA
(eager fp16, the compiled backend), to check the script itself in seconds. Exit code: 0 when no check
failed, 1 otherwise, 2 when the package cannot be imported at all.
"""

from __future__ import annotations

import argparse
import importlib
import json
import platform
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

#: Modules the checks need, with the pip package that provides each.
REQUIRED = {
    "numpy": "numpy",
    "torch": "torch",
    "cv2": "opencv-python-headless",
    "safetensors": "safetensors",
    "yaml": "pyyaml",
    "causal_tune_ros": "this repository (PYTHONPATH=. or pip install --no-deps -e .)",
}
#: Optional modules: reported, never required.
OPTIONAL = {"pytest": "pytest", "torch_tensorrt": "torch-tensorrt", "triton": "triton (inductor on CUDA)"}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for gpu_check.json / gpu_check.md")
    parser.add_argument("--dry-run", action="store_true", help="CPU, tiny model, skip fp16 and compiled")
    parser.add_argument("--size", default="112x224", help="network input HxW of the check model")
    parser.add_argument("--camera", default="1080x1920", help="camera image HxW for post-processing")
    args = parser.parse_args(argv)
    try:
        args.size = tuple(int(v) for v in args.size.lower().split("x"))
        args.camera = tuple(int(v) for v in args.camera.lower().split("x"))
    except ValueError:
        parser.error("sizes are HxW, e.g. 112x224")
    if len(args.size) != 2 or len(args.camera) != 2 or any(v % 14 for v in args.size):
        parser.error("--size must be HxW with both sides multiples of 14; --camera HxW")
    return args


def check_imports() -> tuple[dict[str, Any], list[str]]:
    """Versions of the required and optional modules, and the required ones that are missing."""
    found: dict[str, Any] = {}
    missing = []
    for name, package in {**REQUIRED, **OPTIONAL}.items():
        try:
            module = importlib.import_module(name)
            found[name] = str(getattr(module, "__version__", "present"))
        except Exception as exc:  # ImportError, or a broken install
            found[name] = f"missing ({package}): {type(exc).__name__}"
            if name in REQUIRED:
                missing.append(f"{name} (pip: {package})")
    return found, missing


class Context:
    """The model, checkpoint and device the checks share."""

    def __init__(self, args: argparse.Namespace, folder: Path) -> None:
        import torch

        from causal_tune_ros.model.causal_tune import CausalTuneSegmenter
        from causal_tune_ros.model.checkpoint import save_checkpoint
        from causal_tune_ros.model.dinov2 import DinoV2
        from causal_tune_ros.model.heads import LightHead

        self.dry_run = args.dry_run
        self.device = "cpu" if args.dry_run else "cuda"
        self.size = (28, 56) if args.dry_run else args.size
        self.camera = (60, 130) if args.dry_run else args.camera
        torch.manual_seed(0)
        depth, width = (2, 32) if args.dry_run else (4, 192)
        backbone = DinoV2("custom", embed_dim=width, depth=depth, num_heads=4, img_size=self.size[0])
        head = LightHead(width, 19, channels=32)
        self.model = CausalTuneSegmenter(backbone, head, num_tokens=8, rank=4, scale_init=1.0).eval()
        with torch.no_grad():
            head.classifier.weight.normal_(0.0, 0.5)
        self.checkpoint = save_checkpoint(folder / "check.safetensors", self.model, include_backbone=True)
        import numpy as np

        rng = np.random.default_rng(0)
        self.images = rng.random((1, 3, *self.size), dtype=np.float32)

    def backend(self, name: str, precision: str) -> Any:
        """A loaded backend of the check model."""
        from causal_tune_ros.backends import create_backend

        backend = create_backend(
            name, checkpoint=self.checkpoint, input_size=self.size, device=self.device, precision=precision
        )
        backend.load()
        return backend

    def camera_images(self, count: int) -> list[Any]:
        """``count`` smooth random camera images of slightly different sizes."""
        import cv2
        import numpy as np

        rng = np.random.default_rng(3)
        out = []
        for i in range(count):
            h, w = self.camera[0] - 2 * i, self.camera[1] - 4 * i
            small = rng.integers(0, 256, (h // 16 + 2, w // 16 + 2, 3), dtype=np.uint8)
            out.append(cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR))
        return out


def _agreement(a: Any, b: Any) -> float:
    return float((a.argmax(1) == b.argmax(1)).mean())


def check_eager_fp16(ctx: Context) -> dict[str, Any]:
    """Eager fp16 on CUDA against eager fp32."""
    from causal_tune_ros.band import Band

    if ctx.dry_run:
        return {"status": "skip", "detail": "fp16 eager needs CUDA (dry run)"}
    fp32, fp16 = ctx.backend("eager", "fp32"), ctx.backend("eager", "fp16")
    agree = _agreement(fp16.infer(ctx.images, Band()), fp32.infer(ctx.images, Band()))
    return {"status": "pass" if agree > 0.98 else "fail", "class_agreement": agree}


def check_compiled(ctx: Context) -> dict[str, Any]:
    """The compiled backend: same classes as eager, and no recompilation when the band changes."""
    import torch

    from causal_tune_ros.band import Band

    if ctx.dry_run:
        return {"status": "skip", "detail": "inductor compilation is for the GPU run (dry run)"}
    counters = torch._dynamo.utils.counters
    torch._dynamo.reset()
    counters.clear()
    started = time.perf_counter()
    compiled = ctx.backend("compiled", "fp16")
    compile_seconds = time.perf_counter() - started
    graphs_after_load = counters["stats"]["unique_graphs"]
    eager = ctx.backend("eager", "fp16")
    agreements = []
    for band in (Band(), Band(0.05, 0.3), Band(0.4, 0.9)):
        agreements.append(_agreement(compiled.infer(ctx.images, band), eager.infer(ctx.images, band)))
    recompiles = counters["stats"]["unique_graphs"] - graphs_after_load
    ok = recompiles == 0 and min(agreements) > 0.98 and graphs_after_load == 1
    return {
        "status": "pass" if ok else "fail",
        "compile_seconds": round(compile_seconds, 1),
        "graphs_after_load": graphs_after_load,
        "recompiles_on_band_change": recompiles,
        "graph_breaks": dict(counters["graph_break"]),
        "class_agreement": min(agreements),
    }


def check_export(ctx: Context) -> dict[str, Any]:
    """The graph Torch-TensorRT's dynamo frontend consumes: torch.export, static, band an input."""
    import copy

    import torch

    from causal_tune_ros.backends.base import fp32_io_wrapper

    device = torch.device(ctx.device)
    half = not ctx.dry_run  # the dry run exports fp32 on the CPU
    model = copy.deepcopy(ctx.model).to(device)
    module = fp32_io_wrapper(model.half() if half else model, half)
    example = (torch.from_numpy(ctx.images).to(device), torch.tensor([0.2, 0.7], device=device))
    explained = torch._dynamo.explain(module)(*example)
    with torch.no_grad():
        program = torch.export.export(module, example)
    inputs = [spec for spec in program.graph_signature.input_specs if spec.kind.name == "USER_INPUT"]
    placeholders = {n.name: n for n in program.graph.nodes if n.op == "placeholder"}
    shapes = [tuple(placeholders[spec.arg.name].meta["val"].shape) for spec in inputs]
    static = all(isinstance(d, int) for shape in shapes for d in shape)
    with torch.no_grad():
        band = torch.tensor([0.05, 0.3], device=device)  # not the traced value: the band must be live
        got = program.module()(example[0], band)
        want = module(example[0], band)
    diff = float((got.float() - want.float()).abs().max())
    ok = explained.graph_break_count == 0 and shapes == [(1, 3, *ctx.size), (2,)] and static and diff < 1e-2
    return {
        "status": "pass" if ok else "fail",
        "graph_breaks": explained.graph_break_count,
        "user_inputs": [list(s) for s in shapes],
        "static_shapes": static,
        "max_abs_diff_vs_eager_other_band": diff,
    }


def _pipelines(ctx: Context) -> tuple[Any, Any]:
    from causal_tune_ros.pipeline import SegmentationPipeline

    backend = ctx.backend("eager", "fp32" if ctx.dry_run else "fp16")
    numpy_pipe = SegmentationPipeline(backend, postprocess="numpy")
    torch_pipe = SegmentationPipeline(backend, postprocess="torch")
    return numpy_pipe, torch_pipe


def check_postprocess(ctx: Context) -> dict[str, Any]:
    """Torch post-processing on the device against numpy at camera resolution."""
    import numpy as np

    from causal_tune_ros.band import Band

    numpy_pipe, torch_pipe = _pipelines(ctx)
    rgb = ctx.camera_images(1)[0]
    want, got = numpy_pipe.process(rgb, Band()), torch_pipe.process(rgb, Band())
    ids_equal = bool(np.array_equal(want.class_mask, got.class_mask))
    overlay_equal = bool(np.array_equal(want.overlay, got.overlay))
    drivable_equal = bool(np.array_equal(want.drivable_mask, got.drivable_mask))
    conf = float(np.abs(want.confidence - got.confidence).max())
    ok = ids_equal and overlay_equal and drivable_equal and conf < 2e-3
    return {
        "status": "pass" if ok else "fail",
        "device": torch_pipe.postprocess_device,
        "camera": list(rgb.shape[:2]),
        "class_ids_equal": ids_equal,
        "overlay_equal": overlay_equal,
        "drivable_equal": drivable_equal,
        "confidence_max_abs_diff": conf,
    }


def check_batch(ctx: Context) -> dict[str, Any]:
    """Four cameras in one process_batch against one process call per camera (device post-processing)."""
    import numpy as np

    from causal_tune_ros.band import Band

    _, pipe = _pipelines(ctx)
    rgbs = ctx.camera_images(4)
    together = pipe.process_batch(rgbs, Band())
    alone = [pipe.process(rgb, Band()) for rgb in rgbs]
    equal = [bool(np.array_equal(a.class_mask, b.class_mask)) for a, b in zip(alone, together, strict=True)]
    # Batched matrix products may round differently from batch 1; report the agreement as well.
    agreement = min(
        float((a.class_mask == b.class_mask).mean()) for a, b in zip(alone, together, strict=True)
    )
    return {"status": "pass" if agreement > 0.999 else "fail", "identical": equal, "agreement": agreement}


CHECKS: dict[str, Callable[[Context], dict[str, Any]]] = {
    "eager_fp16": check_eager_fp16,
    "compiled": check_compiled,
    "export": check_export,
    "postprocess": check_postprocess,
    "batch": check_batch,
}


def markdown(report: dict[str, Any]) -> str:
    """The report as a short Markdown document."""
    lines = [f"# GPU check ({report['date']})", "", f"- device: {report['device']}"]
    lines += [f"- {name}: {version}" for name, version in report["imports"].items()]
    lines += ["", "| check | status | details |", "|---|---|---|"]
    for name, result in report["checks"].items():
        details = ", ".join(f"{k}={v}" for k, v in result.items() if k != "status")
        lines.append(f"| {name} | {result['status']} | {details.replace('|', '/')} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Run every check and write ``gpu_check.json`` and ``gpu_check.md`` under ``--out``."""
    args = parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    found, missing = check_imports()
    report: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "python": platform.python_version(),
        "dry_run": args.dry_run,
        "imports": found,
        "device": "unknown",
        "checks": {},
    }
    code = 0
    if missing:
        report["checks"]["imports"] = {"status": "fail", "missing": missing}
        code = 2
    else:
        import torch

        cuda = torch.cuda.is_available()
        report["device"] = torch.cuda.get_device_name() if cuda else "cpu"
        report["torch_cuda"] = torch.version.cuda
        if not cuda and not args.dry_run:
            report["checks"]["cuda"] = {"status": "fail", "detail": "torch sees no CUDA device"}
            code = 1
        else:
            with tempfile.TemporaryDirectory(prefix="gpu_check_") as folder:
                ctx = Context(args, Path(folder))
                for name, check in CHECKS.items():
                    started = time.perf_counter()
                    try:
                        result = check(ctx)
                    except Exception as exc:  # one failing check must not hide the others
                        result = {"status": "fail", "error": f"{type(exc).__name__}: {exc}"}
                        result["traceback"] = traceback.format_exc(limit=4)
                    result["seconds"] = round(time.perf_counter() - started, 1)
                    report["checks"][name] = result
                    print(f"gpu_check: {name}: {result['status']}", flush=True)
            if any(r["status"] == "fail" for r in report["checks"].values()):
                code = 1
    (args.out / "gpu_check.json").write_text(json.dumps(report, indent=2, default=str), encoding="utf-8")
    (args.out / "gpu_check.md").write_text(markdown(report), encoding="utf-8")
    print(f"gpu_check: report in {args.out / 'gpu_check.md'}")
    return code


if __name__ == "__main__":
    sys.exit(main())
