"""Export a Causal-Tune segmenter to an ONNX artefact (fp32 / fp16 / int8) with its JSON sidecar.

Graph contract: inputs ``images`` (1, 3, H, W) float32 RGB in [0, 1] and ``band`` (2,) float32
``(r_low, r_high)``, a true graph input (never folded to a constant), output ``logits`` (1, K, H/4, W/4)
float32. Static shapes: one artefact per input size, as TensorRT engines are.

Which exporter, and why (measured on this 2-core Sapphire Rapids CPU, onnxruntime 1.32, torch 2.13):

- The TorchScript exporter (``torch.onnx.export(..., dynamo=False)``) cannot trace the Causal-Tune model
  at all: tracing turns ``images.shape`` into tensors, and the model derives the patch grid and the
  band-pass size from it as Python ints. It is also deprecated. So the graph comes from the dynamo
  exporter (``torch.export`` + onnxscript), and we fixed what made its graph slower.
- Why the plain dynamo graph was slower than TorchScript's on a plain ViT-S (ORT level ALL, same
  weights): (1) GELU. At opset < 20 the dynamo exporter writes exact GELU as
  ``x * (0.5 * (1 + erf(x / sqrt 2)))``; ORT's GeluFusion only matches ``(x * (1 + erf(..))) * 0.5``
  (TorchScript's order), so every block keeps 5 element-wise passes (Div, Erf, Add, Mul, Mul) over the
  widest tensor (N x 4C) instead of one fused ``Gelu``. Fix: opset 20, where GELU is the native ONNX
  ``Gelu`` op that ORT runs as one kernel. (2) More Reshape/Mul nodes around attention (the
  decomposition scales q and k separately and keeps extra reshapes: 437 vs 365 nodes after ORT
  optimisation); cheap, but not free. Constant folding is not the issue: both paths fold (onnxscript
  optimiser vs TorchScript's ``do_constant_folding``), and both keep the band as an input.
- Neither path gets ORT's attention fusion: SDPA is decomposed into MatMul -> Softmax -> MatMul, which
  materialises the N x N score matrix per head (N = 2739 tokens at 518 x 1036: 180 MB per block) and
  ORT has no fusion pattern for it. PyTorch eager uses its fused (flash) CPU kernel instead, which is
  why ORT trailed eager at large inputs whichever exporter was used. Fix: SDPA is exported as ORT's
  ``com.microsoft.MultiHeadAttention`` contrib op, which has a flash-attention CPU kernel (and fused
  CUDA kernels); measured 44 ms vs 75 ms for the decomposed form per ViT-S block at 518 x 1036.
  ``fused_attention=False`` keeps standard ONNX ops only, for runtimes other than onnxruntime.

int8 is onnxruntime dynamic quantization (int8 weights, activations quantised per call) of the backbone's
Linear layers only (qkv, proj, fc1, fc2: nearly all the FLOPs). The DCT/IDCT bases, the band-pass, the
Causal-Tune token attention (a softmax over dot products with low-rank tokens) and the head stay fp32:
they are cheap and quantising them costs accuracy for no speed.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import platform
import time
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from causal_tune_ros.backends.base import PRECISIONS, fp32_io_wrapper, library_version, parse_size
from causal_tune_ros.backends.cache import model_hash, publish, temporary_path
from causal_tune_ros.backends.segmenter import load_segmenter, source_metadata
from causal_tune_ros.errors import BackendError, ConfigError

#: Default ONNX opset: 20 is the first with a native ``Gelu`` op (see the module docstring).
DEFAULT_OPSET = 20
#: Lowest opset accepted (``LayerNormalization`` is opset 17).
MIN_OPSET = 17
#: Export formats.
FORMATS = ("onnx", "tensorrt")
INPUT_NAMES = ("images", "band")
OUTPUT_NAME = "logits"
#: Protobuf's hard limit on one ONNX file (weights are stored inline).
_PROTOBUF_LIMIT = 2**31 - 2**24
#: onnxruntime's contrib-op domain, used for the fused attention.
MSFT_DOMAIN = "com.microsoft"


def onnx_versions() -> dict[str, str | None]:
    """Library versions recorded in an ONNX sidecar."""
    return {name: library_version(name) for name in ("torch", "onnx", "onnxruntime", "onnxscript")}


# ---------------------------------------------------------------------------------------------- graph


def _mha_translation() -> dict[Any, Any]:
    """Custom dynamo-exporter translation: ``aten.scaled_dot_product_attention`` -> ORT MultiHeadAttention.

    Only the form DINOv2 uses (no mask, no dropout, not causal, default scale) is fused; anything else
    falls back to the exporter's own decomposition.
    """
    import onnxscript
    import torch
    from onnx.defs import OpSchema
    from onnxscript import opset20 as op

    try:
        from onnxscript.function_libs.torch_lib.ops.nn import aten_scaled_dot_product_attention as generic
    except ImportError:  # pragma: no cover - onnxscript layout changed
        generic = None

    param = OpSchema.FormalParameter
    schema = OpSchema(
        "MultiHeadAttention",
        MSFT_DOMAIN,
        1,
        inputs=[param("query", "T"), param("key", "T"), param("value", "T")],
        outputs=[param("output", "T")],
        type_constraints=[("T", ["tensor(float)", "tensor(float16)"], "float tensors")],
        attributes=[OpSchema.Attribute("num_heads", OpSchema.AttrType.INT, "number of heads")],
    )
    mha = onnxscript.values.Op(onnxscript.values.Opset(MSFT_DOMAIN, 1), "MultiHeadAttention", schema)

    def sdpa(query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None, enable_gqa=False):
        heads, head_dim = query.shape[1], query.shape[3]
        default_scale = scale is None or abs(float(scale) - head_dim**-0.5) < 1e-9
        plain = attn_mask is None and not dropout_p and not is_causal and not enable_gqa and default_scale
        if (
            not plain
            or not isinstance(heads, int)
            or not isinstance(head_dim, int)
            or key.shape != query.shape
        ):
            if generic is None:
                raise BackendError("cannot export this attention form; use fused_attention=False")
            return generic(query, key, value, attn_mask, dropout_p, is_causal, scale, enable_gqa)

        def tokens_major(t):  # (B, heads, N, d) -> (B, N, heads * d); ORT cancels the transposes
            return op.Reshape(op.Transpose(t, perm=[0, 2, 1, 3]), op.Constant(value_ints=[0, 0, -1]))

        out = mha(tokens_major(query), tokens_major(key), tokens_major(value), num_heads=heads)
        return op.Transpose(
            op.Reshape(out, op.Constant(value_ints=[0, 0, heads, head_dim])), perm=[0, 2, 1, 3]
        )

    return {torch.ops.aten.scaled_dot_product_attention.default: sdpa}


@contextlib.contextmanager
def _quiet_exporter() -> Iterator[None]:
    """Silence the exporter's logging and deprecation chatter (errors still raise).

    ``verbose=False`` already stops the exporter's progress prints; stdout is not redirected, so other
    threads (a running node) keep their output.
    """
    # The root logger too: onnxruntime's quantiser logs advice through it at WARNING.
    names = ("torch.onnx", "torch.export", "torch._dynamo", "onnxscript", "")
    loggers = [logging.getLogger(name) if name else logging.getLogger() for name in names]
    levels = [lg.level for lg in loggers]
    try:
        for lg in loggers:
            lg.setLevel(logging.ERROR)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


def _clear_model_caches() -> None:
    """Drop tensors the model caches across calls (DCT bases): export traces with fake tensors."""
    try:
        from causal_tune_ros.model import dct

        cached = getattr(dct, "_cached_dct_matrix", None)
        if cached is not None and hasattr(cached, "cache_clear"):
            cached.cache_clear()
    except ImportError:  # pragma: no cover
        pass


def export_onnx_graph(
    model: Any,
    output: str | Path,
    input_size: tuple[int, int],
    *,
    half: bool = False,
    opset: int = DEFAULT_OPSET,
    fused_attention: bool = True,
) -> Path:
    """Write the raw ONNX graph of ``model`` (no sidecar; see :func:`export_onnx` for the full artefact).

    Args:
        model: A segmenter ``forward(images, band) -> logits`` on the CPU, eval mode.
        output: File to write (one file: weights are stored inline, models up to 2 GB).
        input_size: ``(H, W)``, multiples of 14.
        half: Export with fp16 weights and activations (I/O stays float32; for the CUDA provider).
        opset: ONNX opset (>= 17; 20 recommended).
        fused_attention: Export attention as ORT ``MultiHeadAttention`` (faster; onnxruntime only).

    Returns:
        ``output``.

    Raises:
        ConfigError: For an opset below 17.
        BackendError: If the exporter fails.
    """
    import torch

    if opset < MIN_OPSET:
        raise ConfigError(f"ONNX opset must be >= {MIN_OPSET}, got {opset}")
    h, w = parse_size(input_size)
    model = model.cpu().eval()
    weight_bytes = sum(t.numel() * t.element_size() for t in (*model.parameters(), *model.buffers()))
    if weight_bytes * (0.5 if half else 1.0) >= _PROTOBUF_LIMIT:
        raise BackendError(
            f"the model holds {weight_bytes / 1e9:.1f} GB of weights; a single-file ONNX graph is limited to "
            "2 GB (ViT-g/14): use the tensorrt or eager backend for it"
        )
    if half:
        model = copy.deepcopy(model).half()  # never change the caller's model
    images = torch.rand(1, 3, h, w)
    band = torch.tensor([0.2, 0.7], dtype=torch.float32)
    table = _mha_translation() if fused_attention else None
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    _clear_model_caches()
    try:
        with _quiet_exporter(), torch.inference_mode(False):
            torch.onnx.export(
                fp32_io_wrapper(model, half),
                (images, band),
                str(output),
                dynamo=True,
                opset_version=opset,
                input_names=list(INPUT_NAMES),
                output_names=[OUTPUT_NAME],
                custom_translation_table=table,
                external_data=False,
                optimize=True,
                verbose=False,
            )
    except BackendError:
        raise
    except Exception as exc:
        raise BackendError(f"ONNX export failed: {type(exc).__name__}: {exc}") from exc
    finally:
        _clear_model_caches()
    _check_graph_io(output, (h, w))
    return output


def _check_graph_io(path: Path, input_size: tuple[int, int]) -> None:
    """The exported graph must take ``images`` and ``band`` as inputs (band never folded away)."""
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    inputs = {
        i.name: [d.dim_value for d in i.type.tensor_type.shape.dim]
        for i in graph.input
        if i.name in INPUT_NAMES
    }
    want = {"images": [1, 3, *input_size], "band": [2]}
    if inputs != want:
        raise BackendError(
            f"exported graph inputs are {inputs}, expected {want} (band folded to a constant?)"
        )
    if [o.name for o in graph.output] != [OUTPUT_NAME]:
        raise BackendError(
            f"exported graph outputs are {[o.name for o in graph.output]}, expected ['logits']"
        )


def backbone_linear_nodes(path: str | Path) -> list[str]:
    """Names of the MatMul nodes that implement the backbone's Linear layers (qkv, proj, fc1, fc2).

    Uses the module scopes the dynamo exporter records in node metadata, so the DCT bases, the
    Causal-Tune token attention and the head are never selected.

    Raises:
        BackendError: If no such node is found (graph from another exporter).
    """
    import onnx

    names = []
    for node in onnx.load(str(path), load_external_data=False).graph.node:
        if node.op_type != "MatMul":
            continue
        meta = {p.key: p.value for p in node.metadata_props}
        scopes = meta.get("pkg.torch.onnx.name_scopes", "")
        hierarchy = meta.get("pkg.torch.onnx.class_hierarchy", "")
        if "torch.nn.modules.linear.Linear" in hierarchy and "backbone.blocks." in scopes:
            names.append(node.name)
    if not names:
        raise BackendError(
            f"{path}: no backbone Linear layers found to quantise (graph lacks dynamo metadata)"
        )
    return names


def quantize_int8(fp32_path: str | Path, output: str | Path, per_channel: bool = True) -> Path:
    """Dynamic int8 quantisation of the backbone's Linear layers (see the module docstring).

    Args:
        fp32_path: fp32 graph from :func:`export_onnx_graph`.
        output: Quantised graph to write.
        per_channel: One scale per output channel of each weight (better accuracy, same speed).

    Returns:
        ``output``.

    Raises:
        BackendError: If onnxruntime's quantiser is missing or fails.
    """
    try:
        from onnxruntime.quantization import QuantType, quantize_dynamic
    except ImportError as exc:
        raise BackendError(f"int8 export needs onnxruntime (pip install '.[onnx]'): {exc}") from exc
    nodes = backbone_linear_nodes(fp32_path)
    try:
        with _quiet_exporter():
            quantize_dynamic(
                str(fp32_path),
                str(output),
                op_types_to_quantize=["MatMul"],
                nodes_to_quantize=nodes,
                per_channel=per_channel,
                weight_type=QuantType.QInt8,
            )
    except Exception as exc:
        raise BackendError(f"int8 quantisation failed: {type(exc).__name__}: {exc}") from exc
    return Path(output)


def export_onnx(
    model: Any,
    output: str | Path,
    input_size: tuple[int, int],
    precision: str = "fp32",
    *,
    opset: int = DEFAULT_OPSET,
    fused_attention: bool = True,
    model_id: str | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> Path:
    """Export ``model`` to an ONNX artefact plus its sidecar (``<output>.json``), atomically.

    Args:
        model: The segmenter (CPU, eval mode); not modified.
        output: Artefact path (``.onnx``).
        input_size: ``(H, W)``.
        precision: ``fp32``, ``fp16`` (CUDA provider) or ``int8`` (dynamic quantisation, CPU).
        opset: ONNX opset (>= 17).
        fused_attention: See :func:`export_onnx_graph`.
        model_id: Model hash recorded in the sidecar (:func:`~.cache.model_hash` of the source files).
        metadata: Extra sidecar entries (checkpoint name, class names, ...).

    Returns:
        The artefact path.

    Raises:
        ConfigError: Bad precision, size or opset.
        BackendError: Export or quantisation failure.
    """
    if precision not in PRECISIONS:
        raise ConfigError(f"unknown precision {precision!r}; expected one of {', '.join(PRECISIONS)}")
    size = parse_size(input_size)
    output = Path(output)
    started = time.perf_counter()
    tmp = temporary_path(output)
    fp32_tmp = temporary_path(output) if precision == "int8" else tmp
    try:
        export_onnx_graph(
            model, fp32_tmp, size, half=precision == "fp16", opset=opset, fused_attention=fused_attention
        )
        if precision == "int8":
            quantize_int8(fp32_tmp, tmp)
        content = {
            "format": "onnx",
            "precision": precision,
            "input_size": list(size),
            "model_hash": model_id,
            "opset": opset,
            "exporter": "torch.onnx dynamo" + (" + ORT MultiHeadAttention" if fused_attention else ""),
            "fused_attention": fused_attention,
            "inputs": {"images": [1, 3, *size], "band": [2]},
            "outputs": {OUTPUT_NAME: [1, int(model.num_classes), size[0] // 4, size[1] // 4]},
            "num_classes": int(model.num_classes),
            "versions": onnx_versions(),
            "platform": platform.machine(),
            "export_seconds": round(time.perf_counter() - started, 2),
            **dict(metadata or {}),
        }
        return publish(tmp, output, content)
    finally:
        for leftover in {tmp, fp32_tmp}:
            leftover.unlink(missing_ok=True)


def export_checkpoint_onnx(
    checkpoint: str | Path,
    output: str | Path,
    input_size: tuple[int, int],
    precision: str = "fp32",
    *,
    backbone: str | Path | None = None,
    opset: int = DEFAULT_OPSET,
    fused_attention: bool = True,
) -> Path:
    """Load a checkpoint (and its backbone) and export it with :func:`export_onnx`.

    Args:
        checkpoint: Causal-Tune checkpoint.
        output: Artefact path.
        input_size: ``(H, W)``.
        precision: ``fp32`` / ``fp16`` / ``int8``.
        backbone: Backbone weights, ``None`` when embedded in the checkpoint.
        opset: ONNX opset.
        fused_attention: See :func:`export_onnx_graph`.

    Returns:
        The artefact path.

    Raises:
        ConfigError: Bad precision, size or opset.
        CheckpointError: Unreadable or mismatching weights.
        BackendError: Export or quantisation failure.
    """
    return export_onnx(
        load_segmenter(checkpoint, backbone),
        output,
        input_size,
        precision,
        opset=opset,
        fused_attention=fused_attention,
        model_id=model_hash(checkpoint, backbone),
        metadata=source_metadata(checkpoint, backbone),
    )
