"""The SwiGLU feed-forward network of ViT-g/14 (DINOv2's ``swiglufused`` layer)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def swiglu_hidden_features(hidden_features: int) -> int:
    """Hidden width DINOv2 actually uses for a SwiGLU FFN asked for ``hidden_features``.

    SwiGLU has three matrices instead of two, so DINOv2 keeps two thirds of the MLP width (rounded up to a
    multiple of 8) to keep the parameter count: 4096 for ViT-g/14 (1536 x 4 = 6144 asked).

    Args:
        hidden_features: The MLP hidden width (``mlp_ratio * embed_dim``).

    Returns:
        The width of the gated hidden layer.
    """
    return (int(hidden_features * 2 / 3) + 7) // 8 * 8


class SwiGLUFFN(nn.Module):
    """``w3(silu(x1) * x2)`` with ``x1 | x2 = w12(x)`` (``mlp.w12`` / ``mlp.w3`` weights, as in DINOv2).

    Args:
        in_features: Token width.
        hidden_features: MLP hidden width before the two-thirds rule of :func:`swiglu_hidden_features`.
        bias: Whether both projections have biases.
    """

    def __init__(self, in_features: int, hidden_features: int, bias: bool = True) -> None:
        super().__init__()
        hidden = swiglu_hidden_features(hidden_features)
        # One matrix for gate and value (fused): the first half of the outputs is the gate.
        self.w12 = nn.Linear(in_features, 2 * hidden, bias=bias)
        self.w3 = nn.Linear(hidden, in_features, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the gated FFN token-wise.

        Args:
            x: (..., in_features).

        Returns:
            (..., in_features).
        """
        x1, x2 = self.w12(x).chunk(2, dim=-1)
        return self.w3(F.silu(x1) * x2)
