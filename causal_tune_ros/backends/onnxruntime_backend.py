"""onnxruntime backend: runs an exported graph (fp32, fp16 on CUDA, or int8) with the band as an input.

The artefact is either given (``spec.artefact``, checked against its sidecar) or exported from the
checkpoint into the cache on first use and reused afterwards. A sidecar that disagrees with the spec
(input size, precision, model hash when the checkpoint is known) or a file that no longer matches its
recorded digest is a :class:`~causal_tune_ros.errors.BackendError`, never a silently wrong model.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from causal_tune_ros.backends import onnx_export
from causal_tune_ros.backends.base import LOGGER, Backend, BackendInfo, BackendSpec, library_version
from causal_tune_ros.backends.cache import (
    ArtefactCache,
    check_named_artefact,
    private_dir,
    read_sidecar,
)
from causal_tune_ros.errors import BackendError


def _import_ort() -> Any:
    try:
        import onnxruntime
    except ImportError as exc:
        raise BackendError(
            f"the onnxruntime backend needs onnxruntime (pip install '.[onnx]'): {exc}"
        ) from exc
    return onnxruntime


def providers_for(device: str, precision: str = "fp32", cache_dir: Path | None = None) -> list[Any]:
    """Execution providers for a device, best first, from those this onnxruntime build has.

    On CUDA: TensorRT EP (when present; engines cached under ``cache_dir/ort_tensorrt``, fp16 when the
    precision asks for it; nodes it cannot take, like the fused attention, go to the CUDA EP), then CUDA,
    then CPU.

    Args:
        device: ``cpu`` or ``cuda``.
        precision: The artefact's precision (enables the TensorRT EP's fp16 mode for ``fp16``).
        cache_dir: Where the TensorRT EP may cache engines (default: the package cache folder).

    Returns:
        Provider names or ``(name, options)`` pairs, as ``InferenceSession`` takes them.

    Raises:
        BackendError: If CUDA is asked for and this onnxruntime has no CUDA provider.
        UntrustedArtefactError: If the engine cache folder could be written by other users.
    """
    ort = _import_ort()
    available = ort.get_available_providers()
    if device != "cuda":
        return ["CPUExecutionProvider"]
    if "CUDAExecutionProvider" not in available:
        raise BackendError(
            f"onnxruntime {ort.__version__} has no CUDA provider (available: {', '.join(available)}); "
            "install onnxruntime-gpu or use device cpu"
        )
    providers: list[Any] = []
    if "TensorrtExecutionProvider" in available:
        # The EP loads whatever engines lie there: the same ownership rules as the artefact cache.
        engines = private_dir(ArtefactCache(cache_dir).prepare() / "ort_tensorrt", "engine cache folder")
        options = {
            "trt_fp16_enable": precision == "fp16",
            "trt_engine_cache_enable": True,
            "trt_engine_cache_path": str(engines),
        }
        providers.append(("TensorrtExecutionProvider", options))
    return [*providers, "CUDAExecutionProvider", "CPUExecutionProvider"]


def make_session(
    artefact: str | Path,
    device: str = "cpu",
    num_threads: int | None = None,
    precision: str = "fp32",
    cache_dir: Path | None = None,
) -> Any:
    """An ``InferenceSession`` with the settings this package uses.

    Graph optimisation ALL (fuses Gelu, LayerNorm, MatMul+Add, quantised MatMuls, ...), sequential
    execution (one graph, no parallel branches worth an inter-op pool), ``num_threads`` intra-op threads
    (default: onnxruntime's choice, the physical cores). If the TensorRT EP fails to build, the session
    is retried with CUDA and CPU only.

    Args:
        artefact: ONNX file.
        device: ``cpu`` or ``cuda``.
        num_threads: Intra-op threads, ``None`` for the default.
        precision: The artefact's precision (see :func:`providers_for`).
        cache_dir: TensorRT EP engine cache root (see :func:`providers_for`).

    Returns:
        The session.

    Raises:
        BackendError: If the file cannot be loaded (corrupt, truncated, unsupported op, ...).
    """
    ort = _import_ort()
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.inter_op_num_threads = 1
    if num_threads:
        options.intra_op_num_threads = int(num_threads)
    options.log_severity_level = 3  # errors only: ORT warns about harmless things on every load
    providers = providers_for(device, precision, cache_dir)
    try:
        return ort.InferenceSession(str(artefact), sess_options=options, providers=providers)
    except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph/... types
        first = exc
    if len(providers) > 2 and providers[0][0] == "TensorrtExecutionProvider":
        LOGGER.warning("onnxruntime TensorRT EP failed (%s); using the CUDA EP", first)
        try:
            return ort.InferenceSession(str(artefact), sess_options=options, providers=providers[1:])
        except Exception as exc:
            first = exc
    raise BackendError(
        f"onnxruntime cannot load {artefact} (corrupt or incompatible file): {first}"
    ) from first


class OnnxRuntimeBackend(Backend):
    """Runs an ONNX artefact in onnxruntime.

    Args:
        spec: ``precision`` picks the artefact (fp32 / fp16 / int8); ``artefact`` a prebuilt file, else the
            graph is exported from ``checkpoint`` into ``cache_dir`` (reused while its sidecar matches).
    """

    name = "onnxruntime"

    def __init__(self, spec: BackendSpec) -> None:
        super().__init__(spec)
        self._session: Any = None
        self._meta: dict[str, Any] = {}

    def _expected(self) -> dict[str, Any]:
        return self._artefact_identity("onnx")

    def _resolve_artefact(self) -> Path:
        spec = self.spec
        expected = self._expected()
        if spec.artefact is not None:
            ok, reason = check_named_artefact(spec.artefact, expected)
            if not ok:
                raise BackendError(f"ONNX artefact {spec.artefact} cannot be used: {reason}")
            return spec.artefact
        if spec.checkpoint is None:
            raise BackendError("the onnxruntime backend needs an ONNX artefact or a checkpoint to export one")
        cache = ArtefactCache(spec.cache_dir)
        path = cache.path_for(
            expected["model_hash"],
            spec.input_size,
            spec.precision,
            "onnx",
            f"opset{onnx_export.DEFAULT_OPSET}",
        )
        found, reason = cache.lookup(path, expected)
        if found is not None and not spec.force_rebuild:
            return path
        why = "forced rebuild" if spec.force_rebuild else reason
        LOGGER.warning("exporting ONNX graph (%s), cache: %s", why, path)
        return onnx_export.export_checkpoint_onnx(
            spec.checkpoint, path, spec.input_size, spec.precision, backbone=spec.backbone
        )

    def load(self) -> None:
        """Find or export the artefact, check its sidecar and open a session.

        Raises:
            BackendError: Missing onnxruntime, stale / corrupt / mismatched artefact, unusable device,
                or a graph whose inputs/outputs are not ``images``, ``band`` -> ``logits``.
        """
        if self._loaded:
            return
        spec = self.spec
        if spec.precision == "fp16" and spec.device == "cpu":
            LOGGER.info("fp16 ONNX on the CPU: runs, but usually slower than fp32 on x86 (meant for CUDA)")
        artefact = self._resolve_artefact()
        meta = read_sidecar(artefact)
        session = make_session(artefact, spec.device, spec.num_threads, spec.precision, spec.cache_dir)
        inputs = {i.name: i.shape for i in session.get_inputs()}
        h, w = self.input_size
        if inputs.get("images") != [1, 3, h, w] or inputs.get("band") != [2]:
            raise BackendError(
                f"{artefact} takes inputs {inputs}, expected images [1, 3, {h}, {w}] and band [2]"
            )
        outputs = session.get_outputs()
        if len(outputs) != 1 or outputs[0].name != "logits":
            raise BackendError(f"{artefact} outputs {[o.name for o in outputs]}, expected ['logits']")
        self._session, self._meta, self.artefact = session, meta, artefact
        self.num_classes = int(outputs[0].shape[1])
        self._loaded = True

    def _run(self, images: np.ndarray, band: np.ndarray) -> np.ndarray:
        session = self._session
        # The graph has a static batch of 1 (as engines do); larger batches run image by image.
        try:
            results = [
                session.run(["logits"], {"images": images[i : i + 1], "band": band})[0]
                for i in range(len(images))
            ]
        except Exception as exc:
            raise BackendError(f"onnxruntime inference failed: {exc}") from exc
        return results[0] if len(results) == 1 else np.concatenate(results, axis=0)

    def _versions(self) -> dict[str, str | None]:
        return {"onnxruntime": library_version("onnxruntime"), "onnx_opset": str(self._meta.get("opset"))}

    def _device_name(self) -> str:
        if self._session is None:
            return self.spec.device
        return f"{self.spec.device} ({self._session.get_providers()[0]}, {os.cpu_count()} cpus)"

    def describe(self) -> BackendInfo:
        """See :meth:`Backend.describe`; adds ``model_hash`` and ``exporter`` from the sidecar."""
        return replace(
            super().describe(), model_hash=self._meta.get("model_hash"), exporter=self._meta.get("exporter")
        )

    def close(self) -> None:
        """Drop the session."""
        self._session = None
        super().close()
