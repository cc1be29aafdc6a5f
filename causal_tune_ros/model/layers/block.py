"""One pre-norm transformer block of the DINOv2 ViT: tokens in, tokens out."""

from __future__ import annotations

import torch
from torch import nn

from causal_tune_ros.model.layers.attention import Attention
from causal_tune_ros.model.layers.layer_scale import LayerScale
from causal_tune_ros.model.layers.mlp import Mlp
from causal_tune_ros.model.layers.swiglu_ffn import SwiGLUFFN

#: Feed-forward layer names accepted by :class:`Block` (DINOv2's names; ``swiglu`` is an alias there too).
FFN_LAYERS = ("mlp", "swiglufused", "swiglu")


class Block(nn.Module):
    """``x + ls1(attn(norm1(x)))`` then ``x + ls2(mlp(norm2(x)))``; no dropout or drop-path (inference).

    Submodule names match the official checkpoints: ``norm1, attn.{qkv,proj}, ls1.gamma, norm2,
    mlp.{fc1,fc2} | mlp.{w12,w3}, ls2.gamma``.

    Args:
        dim: Token width.
        num_heads: Attention heads.
        mlp_ratio: FFN hidden width as a multiple of ``dim``.
        qkv_bias: Bias on the qkv projection.
        proj_bias: Bias on the attention output projection.
        ffn_bias: Biases in the FFN.
        ffn_layer: ``"mlp"`` (GELU MLP) or ``"swiglufused"`` / ``"swiglu"`` (SwiGLU, ViT-g/14).
        layerscale_init: Initial LayerScale gain; ``None`` or 0 builds the block without LayerScale.
        layer_norm_eps: LayerNorm epsilon (1e-6 in DINOv2).

    Raises:
        ValueError: For an unknown ``ffn_layer`` or a ``num_heads`` that does not divide ``dim``.
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        proj_bias: bool = True,
        ffn_bias: bool = True,
        ffn_layer: str = "mlp",
        layerscale_init: float | None = 1.0,
        layer_norm_eps: float = 1e-6,
    ) -> None:
        super().__init__()
        if ffn_layer not in FFN_LAYERS:
            raise ValueError(f"unknown ffn_layer {ffn_layer!r}; expected one of {', '.join(FFN_LAYERS)}")
        hidden = int(dim * mlp_ratio)
        self.norm1 = nn.LayerNorm(dim, eps=layer_norm_eps)
        self.attn = Attention(dim, num_heads, qkv_bias=qkv_bias, proj_bias=proj_bias)
        self.ls1: nn.Module = LayerScale(dim, layerscale_init) if layerscale_init else nn.Identity()
        self.norm2 = nn.LayerNorm(dim, eps=layer_norm_eps)
        self.mlp: nn.Module = (
            Mlp(dim, hidden, bias=ffn_bias) if ffn_layer == "mlp" else SwiGLUFFN(dim, hidden, bias=ffn_bias)
        )
        self.ls2: nn.Module = LayerScale(dim, layerscale_init) if layerscale_init else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Run the block.

        Args:
            x: (B, N, dim) tokens (class, registers, patches).

        Returns:
            (B, N, dim) tokens.
        """
        x = _residual(x, self.attn(self.norm1(x)), self.ls1)
        return _residual(x, self.mlp(self.norm2(x)), self.ls2)


def _residual(x: torch.Tensor, branch: torch.Tensor, scale: nn.Module) -> torch.Tensor:
    """``x + scale(branch)``; with LayerScale one fused ``addcmul`` (one pass over memory instead of two)."""
    if isinstance(scale, LayerScale):
        return torch.addcmul(x, branch, scale.gamma)
    return x + scale(branch)
