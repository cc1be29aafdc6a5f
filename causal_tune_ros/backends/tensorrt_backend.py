"""TensorRT backend through Torch-TensorRT's dynamo path: static shape, fp16 (or fp32), band as an input.

The compiled program is cached on disk (a serialised ``ExportedProgram`` with embedded TensorRT engines,
``.ep``) under a name keyed by model hash, input size, precision, TensorRT version and GPU, and described by
its JSON sidecar. A cached program whose sidecar does not match (another model, size, precision, TensorRT
version or GPU; a truncated or replaced file), or that this user's trust index does not hold with the
same digests, is rebuilt, never used: a program is unpickled on load, so only one built here is loaded.
Builds take minutes on a Jetson, so the start of a build is logged with where the result goes.

``torch_tensorrt`` is imported lazily: this module imports on machines without it (or without CUDA) and
only :meth:`TensorRTBackend.load` / :func:`build_tensorrt` need it.
"""

from __future__ import annotations

import copy
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from causal_tune_ros.backends.base import (
    LOGGER,
    Backend,
    BackendInfo,
    BackendSpec,
    fp32_io_wrapper,
    library_version,
    parse_size,
)
from causal_tune_ros.backends.cache import (
    ArtefactCache,
    check_named_artefact,
    is_valid,
    publish,
    read_sidecar,
    temporary_path,
)
from causal_tune_ros.backends.segmenter import load_segmenter, source_metadata
from causal_tune_ros.errors import BackendError, ConfigError

#: Precisions the TensorRT path builds (int8 would need calibration data: not offered).
TRT_PRECISIONS = ("fp32", "fp16")


def import_torch_tensorrt() -> Any:
    """Import ``torch_tensorrt`` and check CUDA.

    Raises:
        BackendError: If torch has no CUDA device or torch_tensorrt is not installed / broken.
    """
    import torch

    if not torch.cuda.is_available():
        raise BackendError("the tensorrt backend needs a CUDA device; torch sees none")
    try:
        import torch_tensorrt
    except Exception as exc:  # ImportError, or a broken install raising OSError / RuntimeError
        raise BackendError(
            f"the tensorrt backend needs torch_tensorrt matching torch {torch.__version__} "
            f"(JetPack: NVIDIA's wheel; x86: pip install torch-tensorrt): {exc}"
        ) from exc
    return torch_tensorrt


def engine_identity() -> dict[str, Any]:
    """What a cached program depends on besides the model: library versions and the GPU.

    Returns:
        ``{"tensorrt_version", "gpu", "versions"}``; needs torch_tensorrt (see :func:`import_torch_tensorrt`).
    """
    import torch

    torch_tensorrt = import_torch_tensorrt()
    capability = ".".join(str(v) for v in torch.cuda.get_device_capability())
    return {
        "tensorrt_version": library_version("tensorrt"),
        "gpu": f"{torch.cuda.get_device_name()} (sm {capability})",
        "versions": {
            "torch": torch.__version__,
            "torch_tensorrt": getattr(torch_tensorrt, "__version__", None),
            "tensorrt": library_version("tensorrt"),
            "cuda": torch.version.cuda,
        },
    }


def build_tensorrt(
    model: Any,
    output: str | Path,
    input_size: tuple[int, int] | str,
    precision: str = "fp16",
    *,
    model_id: str | None = None,
    metadata: dict[str, Any] | None = None,
) -> Path:
    """Compile ``model`` with Torch-TensorRT (dynamo, static shape) and save it with its sidecar.

    Args:
        model: The segmenter (any device; compiled on CUDA from a copy, the caller's model is unchanged).
        output: Program path (``.ep``).
        input_size: ``(H, W)`` or ``"HxW"``.
        precision: ``fp16`` (weights and activations half, I/O float32) or ``fp32``.
        model_id: Model hash for the sidecar.
        metadata: Extra sidecar entries.

    Returns:
        ``output``.

    Raises:
        ConfigError: For a precision TensorRT is not built with here (int8).
        BackendError: No CUDA / torch_tensorrt, or the build fails.
    """
    import torch

    if precision not in TRT_PRECISIONS:
        raise ConfigError(f"TensorRT builds {' or '.join(TRT_PRECISIONS)}, not {precision!r}")
    torch_tensorrt = import_torch_tensorrt()
    h, w = parse_size(input_size)
    half = precision == "fp16"
    device = torch.device("cuda")
    module = copy.deepcopy(model).to(device).eval()
    if half:
        module = module.half()
    wrapped = fp32_io_wrapper(module, half)
    example = [torch.rand(1, 3, h, w, device=device), torch.tensor([0.2, 0.7], device=device)]
    output = Path(output)
    LOGGER.warning("building engine (expected several minutes on Jetson), cache: %s", output)
    started = time.perf_counter()
    options: dict[str, Any] = {"ir": "dynamo", "inputs": example, "min_block_size": 1}
    if half:
        options["enabled_precisions"] = {torch.float16, torch.float32}
    try:
        with torch.no_grad():
            compiled = torch_tensorrt.compile(wrapped, **options)
    except Exception as exc:
        raise BackendError(f"Torch-TensorRT build failed: {type(exc).__name__}: {exc}") from exc
    tmp = temporary_path(output)
    try:
        try:
            torch_tensorrt.save(compiled, str(tmp), output_format="exported_program", arg_inputs=example)
        except TypeError:  # torch_tensorrt < 2.4 names the argument `inputs`
            torch_tensorrt.save(compiled, str(tmp), output_format="exported_program", inputs=example)
        content = {
            "format": "tensorrt",
            "precision": precision,
            "input_size": [h, w],
            "model_hash": model_id,
            "num_classes": int(getattr(model, "num_classes", 0)),
            "inputs": {"images": [1, 3, h, w], "band": [2]},
            "build_seconds": round(time.perf_counter() - started, 1),
            **engine_identity(),
            **dict(metadata or {}),
        }
        publish(tmp, output, content)
    except BackendError:
        raise
    except Exception as exc:
        raise BackendError(f"cannot save the TensorRT program to {output}: {exc}") from exc
    finally:
        tmp.unlink(missing_ok=True)
    LOGGER.warning("engine built in %.0f s: %s", time.perf_counter() - started, output)
    return output


class TensorRTBackend(Backend):
    """Runs a Torch-TensorRT program compiled for one input size and precision (CUDA only).

    Args:
        spec: ``checkpoint`` (+ ``backbone``) to build from (and to key the cache), ``precision`` fp16 or
            fp32, ``cache_dir``, ``force_rebuild``; or ``artefact``, a prebuilt ``.ep`` with its sidecar.
    """

    name = "tensorrt"
    device_output = True

    def __init__(self, spec: BackendSpec) -> None:
        super().__init__(spec)
        self._module: Any = None
        self._meta: dict[str, Any] = {}
        self._band_cache: tuple[bytes, Any] | None = None

    def _expected(self) -> dict[str, Any]:
        identity = engine_identity()  # first: a missing torch_tensorrt is reported before hashing
        return {
            **self._artefact_identity("tensorrt"),
            "tensorrt_version": identity["tensorrt_version"],
            "gpu": identity["gpu"],
        }

    def _resolve_artefact(self) -> Path:
        spec = self.spec
        expected = self._expected()
        if spec.artefact is not None and not spec.force_rebuild:
            ok, reason = check_named_artefact(spec.artefact, expected)
            if not ok:
                raise BackendError(f"TensorRT program {spec.artefact} cannot be used: {reason}")
            return spec.artefact
        if spec.checkpoint is None:
            raise BackendError(
                "the tensorrt backend needs a checkpoint to build an engine (or a valid artefact)"
            )
        if spec.artefact is not None:
            path = spec.artefact
        else:
            tag = f"trt{expected['tensorrt_version']}"
            cache = ArtefactCache(spec.cache_dir)
            cache.prepare()
            path = cache.path_for(expected["model_hash"], spec.input_size, spec.precision, "tensorrt", tag)
        # A program is a pickle: only one this user built, unchanged since (trust index), is ever loaded.
        ok, reason = is_valid(path, expected)
        if ok and not spec.force_rebuild:
            LOGGER.info("using cached TensorRT program %s", path)
            return path
        LOGGER.warning("TensorRT cache miss (%s)", "forced rebuild" if spec.force_rebuild else reason)
        model = load_segmenter(spec.checkpoint, spec.backbone)
        meta = source_metadata(spec.checkpoint, spec.backbone)
        return build_tensorrt(
            model, path, spec.input_size, spec.precision, model_id=expected["model_hash"], metadata=meta
        )

    def load(self) -> None:
        """Load the cached program, building it first when missing or stale.

        Raises:
            BackendError: No CUDA / torch_tensorrt, int8 asked for, a build or load failure, or a given
                artefact that does not match the spec.
        """
        if self._loaded:
            return
        if self.spec.precision not in TRT_PRECISIONS:
            raise BackendError(
                f"the tensorrt backend builds {' or '.join(TRT_PRECISIONS)}, not {self.spec.precision}"
            )
        if self.spec.device != "cuda":
            raise BackendError("the tensorrt backend runs on device cuda only")
        torch_tensorrt = import_torch_tensorrt()
        artefact = self._resolve_artefact()
        try:
            module = torch_tensorrt.load(str(artefact)).module()
        except Exception as exc:
            raise BackendError(f"cannot load TensorRT program {artefact}: {exc}") from exc
        self._meta = read_sidecar(artefact)
        self._module, self.artefact = module, artefact
        self.num_classes = int(self._meta.get("num_classes") or 0)
        self._loaded = True

    def _run(self, images: np.ndarray, band: np.ndarray) -> np.ndarray:
        logits = self._run_device(images, band).cpu().numpy()
        if not self.num_classes:
            self.num_classes = int(logits.shape[1])
        return logits

    def _run_device(self, images: np.ndarray, band: np.ndarray) -> Any:
        import torch

        key = band.tobytes()
        if self._band_cache is None or self._band_cache[0] != key:
            self._band_cache = (key, torch.from_numpy(band.copy()).cuda())
        outputs = []
        try:
            with torch.inference_mode():
                for i in range(len(images)):  # static batch of 1
                    x = torch.from_numpy(images[i : i + 1]).cuda(non_blocking=True)
                    outputs.append(self._module(x, self._band_cache[1]).float())
                logits = torch.cat(outputs)
        except Exception as exc:
            raise BackendError(f"TensorRT inference failed: {exc}") from exc
        return logits

    @property
    def module(self) -> Any:
        """The loaded Torch-TensorRT module (``None`` before :meth:`load`)."""
        return self._module

    def _versions(self) -> dict[str, str | None]:
        return dict(self._meta.get("versions") or {"torch_tensorrt": library_version("torch_tensorrt")})

    def _device_name(self) -> str:
        return str(self._meta.get("gpu") or self.spec.device)

    def describe(self) -> BackendInfo:
        """See :meth:`Backend.describe`; adds ``model_hash`` from the sidecar."""
        return replace(super().describe(), model_hash=self._meta.get("model_hash"))

    def close(self) -> None:
        """Drop the program and its GPU memory."""
        self._module = None
        self._band_cache = None
        super().close()
