"""LayerScale: a learned per-channel gain on each residual branch (CaiT, used by DINOv2)."""

from __future__ import annotations

import torch
from torch import nn


class LayerScale(nn.Module):
    """Multiply tokens channel-wise by ``gamma`` (the ``ls1.gamma`` / ``ls2.gamma`` weights).

    Args:
        dim: Token width.
        init_values: Initial value of every gain (pretrained weights overwrite it).
    """

    def __init__(self, dim: int, init_values: float = 1.0) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.full((dim,), float(init_values)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Scale the tokens.

        Args:
            x: (..., dim).

        Returns:
            ``x * gamma``, same shape.
        """
        return x * self.gamma
