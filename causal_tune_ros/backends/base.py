"""The small interface every inference backend implements, and the spec that selects and configures one.

A backend turns a batch of RGB images in [0, 1] and a Causal-Tune band into class logits. The band is a
*run-time input* of every backend (a ``(2,)`` float32 array next to the images), so weather-adaptive band
switching never rebuilds an engine or re-exports a graph.
"""

from __future__ import annotations

import abc
import importlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from causal_tune_ros.backends.cache import model_hash
from causal_tune_ros.band import Band
from causal_tune_ros.errors import BackendError, CausalTuneError, ConfigError
from causal_tune_ros.sizes import parse_input_size as parse_size  # backends' name for it (public)

LOGGER = logging.getLogger("causal_tune_ros.backends")

#: Accepted values of :attr:`BackendSpec.name`.
BACKEND_NAMES = ("auto", "eager", "compiled", "onnxruntime", "tensorrt")
#: Accepted values of :attr:`BackendSpec.device`.
DEVICES = ("cpu", "cuda")
#: Accepted values of :attr:`BackendSpec.precision`.
PRECISIONS = ("fp32", "fp16", "int8")
#: Network input (H, W) used when a spec names none: DINOv2's native height, a 1:2 road-camera aspect.
DEFAULT_INPUT_SIZE = (518, 1036)


def _as_path(value: str | Path | None) -> Path | None:
    return None if value is None or str(value) == "" else Path(value).expanduser()


@dataclass(frozen=True)
class BackendSpec:
    """Everything needed to build a backend; immutable, validated on construction.

    Attributes:
        name: ``auto`` (TensorRT when CUDA and torch_tensorrt are importable, else eager), ``eager``,
            ``compiled`` (eager through ``torch.compile``), ``onnxruntime`` or ``tensorrt``.
        checkpoint: Causal-Tune checkpoint (safetensors). Needed by eager and to build/validate artefacts;
            an onnxruntime backend given only ``artefact`` runs without it.
        backbone: DINOv2 weights file or folder, or ``None`` when the checkpoint embeds the backbone.
        input_size: Network input ``(H, W)``, both multiples of 14.
        device: ``cpu`` or ``cuda``.
        precision: ``fp32``, ``fp16`` (CUDA: eager, TensorRT, onnxruntime CUDA EP) or ``int8``
            (onnxruntime dynamic quantization).
        cache_dir: Where exported graphs / engines are cached (default :func:`~.cache.default_cache_dir`).
        force_rebuild: Rebuild a cached artefact even when it is valid.
        torch_compile: Eager only: wrap the model in ``torch.compile`` on first use (the ``compiled``
            backend compiles at load time, whole-graph, with CUDA graphs on CUDA).
        artefact: A prebuilt ONNX file / TensorRT program to use instead of the cache (checked against
            its JSON sidecar).
        num_threads: CPU threads for inference (``None``: library default).

    Raises:
        ConfigError: For an unknown name, device or precision, or an input size that is not a positive
            multiple of 14.
    """

    name: str = "auto"
    checkpoint: Path | None = None
    backbone: Path | None = None
    input_size: tuple[int, int] = DEFAULT_INPUT_SIZE
    device: str = "cpu"
    precision: str = "fp32"
    cache_dir: Path | None = None
    force_rebuild: bool = False
    torch_compile: bool = False
    artefact: Path | None = None
    num_threads: int | None = None

    def __post_init__(self) -> None:
        # Normalise in place (frozen dataclass): paths from strings, sizes from lists / "HxW" strings.
        for key in ("checkpoint", "backbone", "cache_dir", "artefact"):
            object.__setattr__(self, key, _as_path(getattr(self, key)))
        object.__setattr__(self, "name", str(self.name).strip().lower())
        object.__setattr__(self, "device", str(self.device).strip().lower())
        object.__setattr__(self, "precision", str(self.precision).strip().lower())
        object.__setattr__(self, "input_size", parse_size(self.input_size))
        if self.name not in BACKEND_NAMES:
            raise ConfigError(f"unknown backend {self.name!r}; expected one of {', '.join(BACKEND_NAMES)}")
        if self.device not in DEVICES:
            raise ConfigError(f"unknown device {self.device!r}; expected one of {', '.join(DEVICES)}")
        if self.precision not in PRECISIONS:
            raise ConfigError(
                f"unknown precision {self.precision!r}; expected one of {', '.join(PRECISIONS)}"
            )
        if self.num_threads is not None and int(self.num_threads) <= 0:
            raise ConfigError(f"num_threads must be positive, got {self.num_threads}")

    def with_changes(self, **changes: Any) -> BackendSpec:
        """A copy with some fields replaced (validated again)."""
        return replace(self, **changes)


@dataclass(frozen=True)
class BackendInfo:
    """Facts about a backend for logs, diagnostics and run metadata (:meth:`Backend.describe`).

    Attributes:
        name: Backend name (``eager``, ``compiled``, ``onnxruntime``, ``tensorrt``).
        device: Device in words (e.g. ``cuda (NVIDIA ...)``, ``cpu (2 threads)``).
        precision: ``fp32``, ``fp16`` or ``int8``.
        input_size: Network input ``(H, W)``.
        num_classes: Output classes (0 before loading).
        artefact: Path of the file the backend runs, or ``None``.
        versions: Library name -> version.
        model_hash: Model hash from an artefact's sidecar (onnxruntime, tensorrt), else ``None``.
        exporter: How an ONNX artefact was exported (from its sidecar), else ``None``.
    """

    name: str
    device: str
    precision: str
    input_size: tuple[int, int]
    num_classes: int
    artefact: str | None
    versions: dict[str, str | None] = field(default_factory=dict)
    model_hash: str | None = None
    exporter: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-able form: ``input_size`` a list; ``model_hash`` / ``exporter`` only when known."""
        info: dict[str, Any] = {
            "name": self.name,
            "device": self.device,
            "precision": self.precision,
            "input_size": list(self.input_size),
            "num_classes": self.num_classes,
            "artefact": self.artefact,
            "versions": dict(self.versions),
        }
        for key in ("model_hash", "exporter"):
            if getattr(self, key) is not None:
                info[key] = getattr(self, key)
        return info


def band_array(band: Band | Sequence[float] | np.ndarray) -> np.ndarray:
    """The band as the ``(2,)`` float32 array every backend takes as its second input.

    Args:
        band: A :class:`~causal_tune_ros.band.Band`, or ``(r_low, r_high)``.

    Returns:
        Contiguous float32 array ``[r_low, r_high]``.

    Raises:
        ConfigError: If the values are not a valid band (``0 < low < high <= 1``).
    """
    if not isinstance(band, Band):
        values = np.asarray(band, dtype=np.float64).reshape(-1)
        if values.shape != (2,):
            raise ConfigError(f"band must be (r_low, r_high), got shape {values.shape}")
        band = Band(float(values[0]), float(values[1]))
    return np.asarray(band.as_tuple(), dtype=np.float32)


def library_version(module: str) -> str | None:
    """Version string of an importable library, or ``None`` when it is not installed."""
    try:
        mod = importlib.import_module(module)
    except Exception:  # optional library missing or broken: report, never fail
        return None
    return str(getattr(mod, "__version__", "unknown"))


def fp32_io_wrapper(model: Any, half: bool) -> Any:
    """Wrap a segmentation model as ``(images fp32, band fp32) -> logits fp32`` for export/compile.

    For fp16 the casts live inside the wrapper so the exported or compiled graph keeps fp32 inputs and
    outputs (shared by the ONNX exporter and the TensorRT builder).

    Args:
        model: A ``torch.nn.Module`` taking ``(images, band)``; already cast to fp16 when ``half``.
        half: Cast the images to fp16 before the model.

    Returns:
        The wrapping ``torch.nn.Module`` in eval mode.
    """
    import torch  # lazy: this module stays importable without torch

    class _Wrapper(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, images: torch.Tensor, band: torch.Tensor) -> torch.Tensor:
            if half:
                images = images.half()
            return self.model(images, band).float()

    return _Wrapper().eval()


class Backend(abc.ABC):
    """Runs the segmentation network: images in [0, 1] and a band in, logits out.

    Subclasses implement :meth:`load` and :meth:`_run`; :meth:`infer` validates inputs, loads lazily and
    checks the output shape so every backend reports bad input the same way.

    Attributes:
        name: Backend name (``eager``, ``onnxruntime``, ``tensorrt``).
        spec: The :class:`BackendSpec` it was built from.
        input_size: Network input ``(H, W)``.
        num_classes: Number of output classes (known after :meth:`load`; 0 before).
        artefact: Path of the file the backend runs (checkpoint, ONNX graph or engine) once loaded.
    """

    name: str = "backend"
    #: Whether :meth:`infer_device` can hand the logits back as torch tensors on the backend's device.
    device_output: bool = False

    def __init__(self, spec: BackendSpec) -> None:
        self.spec = spec
        self.input_size: tuple[int, int] = spec.input_size
        self.num_classes: int = 0
        self.artefact: Path | None = None
        self._loaded = False

    # ------------------------------------------------------------------ to implement

    @abc.abstractmethod
    def load(self) -> None:
        """Load (and if needed build) what the backend runs; idempotent.

        Raises:
            BackendError: If the artefact is missing, stale, corrupt or a library is unavailable.
        """

    @abc.abstractmethod
    def _run(self, images: np.ndarray, band: np.ndarray) -> np.ndarray:
        """Run validated inputs: ``images`` (B, 3, H, W) float32 C-contiguous, ``band`` (2,) float32."""

    def _run_device(self, images: np.ndarray, band: np.ndarray) -> Any:
        """Like :meth:`_run`, but the logits stay a torch tensor on the backend's device.

        Implemented by the torch-based backends (those with :attr:`device_output`).
        """
        raise BackendError(f"the {self.name} backend returns host arrays only")

    def _versions(self) -> dict[str, str | None]:
        """Versions of the libraries this backend uses (for :meth:`describe`)."""
        return {"numpy": np.__version__}

    def _device_name(self) -> str:
        return self.spec.device

    def _artefact_identity(self, artefact_format: str) -> dict[str, Any]:
        """Sidecar fields every built artefact must match: format, precision, input size, model hash.

        Args:
            artefact_format: The ``format`` recorded in the sidecar (``onnx``, ``tensorrt``).

        Returns:
            ``{"format", "precision", "input_size", "model_hash"}``; ``model_hash`` is ``None`` without a
            checkpoint (a prebuilt artefact is then not tied to one).

        Raises:
            BackendError: If the checkpoint files cannot be read for hashing.
        """
        spec = self.spec
        return {
            "format": artefact_format,
            "precision": spec.precision,
            "input_size": list(spec.input_size),
            "model_hash": None if spec.checkpoint is None else model_hash(spec.checkpoint, spec.backbone),
        }

    # ------------------------------------------------------------------ public

    @property
    def loaded(self) -> bool:
        """Whether :meth:`load` has completed."""
        return self._loaded

    def infer(self, images: np.ndarray, band: Band | Sequence[float] | np.ndarray) -> np.ndarray:
        """Class logits for a batch of images.

        Args:
            images: (B, 3, H, W) float32 RGB in [0, 1], ``(H, W) == input_size``.
            band: The Causal-Tune band in force (a run-time input).

        Returns:
            (B, K, h, w) float32 logits (h = H // 4, w = W // 4 for the default head).

        Raises:
            BackendError: For images of the wrong type, dtype or shape, or when inference fails.
            ConfigError: For an invalid band.
        """
        images, bands = self._checked_inputs(images, band)
        return self._checked_logits(self._run(images, bands), len(images))

    def infer_device(self, images: np.ndarray, band: Band | Sequence[float] | np.ndarray) -> Any:
        """Class logits left on the backend's device, for post-processing there (see :attr:`device_output`).

        Args:
            images: As :meth:`infer`.
            band: As :meth:`infer`.

        Returns:
            A (B, K, h, w) ``torch.Tensor`` (float32, or float16 from fp16 models) on :attr:`torch_device`.

        Raises:
            BackendError: As :meth:`infer`, and for a backend without device output.
            ConfigError: For an invalid band.
        """
        if not self.device_output:
            raise BackendError(f"the {self.name} backend returns host arrays only")
        images, bands = self._checked_inputs(images, band)
        return self._checked_logits(self._run_device(images, bands), len(images))

    @property
    def torch_device(self) -> str:
        """Device of :meth:`infer_device`'s tensors (``cpu`` or ``cuda``), from the spec."""
        return self.spec.device

    def _checked_inputs(
        self, images: np.ndarray, band: Band | Sequence[float] | np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Validate images and band, load the backend if needed; returns contiguous arrays."""
        if not isinstance(images, np.ndarray):
            raise BackendError(f"images must be a numpy array, got {type(images).__name__}")
        if images.dtype != np.float32:
            raise BackendError(f"images must be float32 in [0, 1], got {images.dtype}")
        h, w = self.input_size
        if images.ndim != 4 or images.shape[1] != 3 or images.shape[2:] != (h, w) or images.shape[0] < 1:
            raise BackendError(f"images must have shape (B, 3, {h}, {w}), got {images.shape}")
        bands = band_array(band)
        if not self._loaded:
            self.load()
        return np.ascontiguousarray(images), bands

    def _checked_logits(self, logits: Any, batch: int) -> Any:
        """Refuse logits that are not (B, K, h, w) for ``batch`` images."""
        if logits.ndim != 4 or logits.shape[0] != batch:
            raise BackendError(
                f"{self.name} returned logits of shape {tuple(logits.shape)} for {batch} images"
            )
        return logits

    def describe(self) -> BackendInfo:
        """Facts for logs and diagnostics (``describe().as_dict()`` for JSON)."""
        return BackendInfo(
            name=self.name,
            device=self._device_name(),
            precision=self.spec.precision,
            input_size=(int(self.input_size[0]), int(self.input_size[1])),
            num_classes=self.num_classes,
            artefact=None if self.artefact is None else str(self.artefact),
            versions=self._versions(),
        )

    def close(self) -> None:
        """Release sessions, engines and device memory; the backend can be loaded again afterwards."""
        self._loaded = False

    def __enter__(self) -> Backend:
        self.load()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        h, w = self.input_size
        return f"{type(self).__name__}({self.spec.device}, {self.spec.precision}, {h}x{w})"


def recorded_input_size_or_none(checkpoint: str | Path | None) -> tuple[int, int] | None:
    """The network input size a checkpoint records, or ``None`` (no checkpoint, no record, unreadable).

    Never raises: a missing or broken file is reported, with its reason, when the backend loads it.
    Imports the model code lazily, so an onnxruntime-only install without torch still imports this.
    """
    if not checkpoint:
        return None
    try:
        from causal_tune_ros.model.checkpoint import recorded_input_size as read_size

        return read_size(checkpoint)
    except (ImportError, CausalTuneError):
        return None
