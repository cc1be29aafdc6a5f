"""The transformer feed-forward network of ViT-S/B/L: Linear, exact GELU, Linear."""

from __future__ import annotations

import torch
from torch import nn


class Mlp(nn.Module):
    """Two-layer MLP with GELU (``mlp.fc1`` / ``mlp.fc2`` weights, as in DINOv2).

    Args:
        in_features: Token width.
        hidden_features: Width of the hidden layer (``mlp_ratio * in_features`` in DINOv2).
        bias: Whether both layers have biases.
    """

    def __init__(self, in_features: int, hidden_features: int, bias: bool = True) -> None:
        super().__init__()
        self.fc1 = nn.Linear(in_features, hidden_features, bias=bias)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden_features, in_features, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the MLP token-wise.

        Args:
            x: (..., in_features).

        Returns:
            (..., in_features).
        """
        return self.fc2(self.act(self.fc1(x)))
