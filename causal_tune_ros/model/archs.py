"""The official DINOv2 architectures (ViT-S/B/L/g 14) and the settings they share (data, no model code)."""

from __future__ import annotations

import re
from typing import Any

from causal_tune_ros.errors import ConfigError

#: The four official architectures (hub names ``dinov2_vit{s,b,l,g}14``); ViT-g uses the SwiGLU FFN.
ARCHS: dict[str, dict[str, Any]] = {
    "vits14": {"embed_dim": 384, "depth": 12, "num_heads": 6, "mlp_ratio": 4.0, "ffn_layer": "mlp"},
    "vitb14": {"embed_dim": 768, "depth": 12, "num_heads": 12, "mlp_ratio": 4.0, "ffn_layer": "mlp"},
    "vitl14": {"embed_dim": 1024, "depth": 24, "num_heads": 16, "mlp_ratio": 4.0, "ffn_layer": "mlp"},
    "vitg14": {"embed_dim": 1536, "depth": 40, "num_heads": 24, "mlp_ratio": 4.0, "ffn_layer": "swiglufused"},
}

#: Settings shared by every official architecture. ``layerscale_init`` is 1.0 as in the official hub
#: builder and in transformers (training used 1e-5); it only matters for random init, weights overwrite it.
#: The two ``interpolate_*`` entries are ``None`` = "as the official model with this register count".
COMMON_DEFAULTS: dict[str, Any] = {
    "patch_size": 14,
    "img_size": 518,
    "in_chans": 3,
    "qkv_bias": True,
    "proj_bias": True,
    "ffn_bias": True,
    "layerscale_init": 1.0,
    "layer_norm_eps": 1e-6,
    "interpolate_antialias": None,
    "interpolate_offset": None,
}

#: Name of an architecture given entirely by overrides (``embed_dim``, ``depth`` and ``num_heads`` needed).
CUSTOM_ARCH = "custom"

_ARCH_RE = re.compile(r"^(?:dinov2_)?(vit[sblg]14|custom)(?:_reg(\d*))?$")


def parse_arch(name: str) -> tuple[str, int | None]:
    """Split an architecture name into the base name and the register count it implies.

    Accepts ``vits14``, ``vitb14``, ``vitl14``, ``vitg14`` and ``custom``, optionally with the hub prefix
    ``dinov2_`` and a register suffix ``_reg`` (4 registers, as released) or ``_regN``.

    Args:
        name: Architecture name, e.g. ``"vitb14"`` or ``"dinov2_vitb14_reg4"``.

    Returns:
        ``(base, registers)``, ``registers`` ``None`` when the name has no ``_reg`` suffix.

    Raises:
        ConfigError: For an unknown name.
    """
    match = _ARCH_RE.match(str(name).strip().lower())
    if match is None:
        known = ", ".join([*ARCHS, CUSTOM_ARCH])
        raise ConfigError(f"unknown DINOv2 architecture {name!r}; expected one of {known} (optionally _reg4)")
    base, reg = match.groups()
    if reg is None:
        return base, None
    return base, int(reg) if reg else 4
