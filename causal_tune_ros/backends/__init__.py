"""Inference backends behind one small interface: eager PyTorch, torch.compile, onnxruntime and TensorRT.

Use :func:`create_backend` (or :func:`load_backend_with_fallback`, which the node and replay use: a stale,
corrupt or unavailable artefact falls back to eager with a warning instead of stopping the robot).
Backend modules import their heavy libraries lazily, so ``import causal_tune_ros.backends`` works on a
machine without onnxruntime or torch_tensorrt.
"""

from __future__ import annotations

import importlib.util
from typing import Any

from causal_tune_ros.backends.base import (
    BACKEND_NAMES,
    DEFAULT_INPUT_SIZE,
    LOGGER,
    Backend,
    BackendInfo,
    BackendSpec,
    band_array,
    parse_size,
    recorded_input_size_or_none,
)
from causal_tune_ros.errors import CausalTuneError

__all__ = [
    "BACKEND_NAMES",
    "DEFAULT_INPUT_SIZE",
    "Backend",
    "BackendInfo",
    "BackendSpec",
    "band_array",
    "create_backend",
    "load_backend_with_fallback",
    "parse_size",
    "recorded_input_size_or_none",
    "resolve_spec",
    "tensorrt_available",
]


def tensorrt_available() -> bool:
    """Whether CUDA is usable and ``torch_tensorrt`` is installed (without importing it)."""
    import torch

    return bool(torch.cuda.is_available()) and importlib.util.find_spec("torch_tensorrt") is not None


def resolve_spec(spec: BackendSpec) -> BackendSpec:
    """Turn ``name="auto"`` into a concrete choice; other specs are returned unchanged.

    ``auto`` is TensorRT fp16 on CUDA when CUDA and torch_tensorrt are available (the product's real-time
    configuration), else eager: on CUDA when there is a device, else fp32 on the CPU.

    Args:
        spec: Any spec.

    Returns:
        A spec whose name is ``eager``, ``compiled``, ``onnxruntime`` or ``tensorrt``.
    """
    if spec.name != "auto":
        return spec
    import torch

    if tensorrt_available():
        return spec.with_changes(name="tensorrt", device="cuda", precision="fp16")
    if torch.cuda.is_available() and spec.device == "cuda":
        precision = "fp16" if spec.precision == "fp16" else "fp32"
        return spec.with_changes(name="eager", precision=precision)
    return spec.with_changes(name="eager", device="cpu", precision="fp32")


def create_backend(spec: BackendSpec | str, **fields: Any) -> Backend:
    """Build (but do not load) the backend a spec names.

    Args:
        spec: A :class:`BackendSpec`, or a backend name with the other spec fields as keywords
            (``create_backend("onnxruntime", checkpoint=..., input_size=(518, 1036))``).
        **fields: Spec fields when ``spec`` is a name; with a spec they replace its fields.

    Returns:
        An unloaded :class:`Backend`; call ``load()`` (or let the first ``infer`` do it).

    Raises:
        ConfigError: For invalid spec values.
    """
    if isinstance(spec, str):
        spec = BackendSpec(name=spec, **fields)
    elif fields:
        spec = spec.with_changes(**fields)
    spec = resolve_spec(spec)
    if spec.name == "eager":
        from causal_tune_ros.backends.eager import EagerBackend

        return EagerBackend(spec)
    if spec.name == "compiled":
        from causal_tune_ros.backends.compiled import CompiledBackend

        return CompiledBackend(spec)
    if spec.name == "onnxruntime":
        from causal_tune_ros.backends.onnxruntime_backend import OnnxRuntimeBackend

        return OnnxRuntimeBackend(spec)
    from causal_tune_ros.backends.tensorrt_backend import TensorRTBackend

    return TensorRTBackend(spec)


def _eager_fallback_spec(spec: BackendSpec) -> BackendSpec:
    """The eager spec closest to ``spec`` that can run here."""
    import torch

    if spec.device == "cuda" and torch.cuda.is_available():
        precision = "fp16" if spec.precision == "fp16" else "fp32"
        return spec.with_changes(name="eager", precision=precision, artefact=None, torch_compile=False)
    return spec.with_changes(name="eager", device="cpu", precision="fp32", artefact=None, torch_compile=False)


def load_backend_with_fallback(spec: BackendSpec) -> tuple[Backend, str | None]:
    """Create and load the backend; if it cannot be used, fall back to eager with a warning.

    A missing library, no CUDA, a corrupt / stale / mismatched artefact or a failed build all lead to the
    eager backend (same checkpoint; CUDA if present, else CPU fp32) and a warning string for logs and
    diagnostics. Only when eager fails too (e.g. the checkpoint itself is unreadable) does this raise.

    Args:
        spec: The requested backend.

    Returns:
        ``(loaded backend, None)`` or ``(loaded eager backend, warning)``.

    Raises:
        CausalTuneError: The eager backend's own error (``CheckpointError``, ``BackendError``, ...) when
            eager cannot load either.
    """
    resolved = resolve_spec(spec)
    try:
        backend = create_backend(resolved)
        backend.load()
        return backend, None
    except CausalTuneError as exc:
        if resolved.name == "eager":
            raise
        reason = str(exc)
    except Exception as exc:  # a library failing in an unforeseen way must not stop the node
        if resolved.name == "eager":
            raise
        reason = f"{type(exc).__name__}: {exc}"
    fallback = _eager_fallback_spec(resolved)
    backend = create_backend(fallback)
    backend.load()
    warning = (
        f"{resolved.name} backend ({resolved.device}, {resolved.precision}) unavailable: {reason}; "
        f"falling back to eager ({fallback.device}, {fallback.precision})"
    )
    LOGGER.warning(warning)
    return backend, warning
