"""Patch embedding: non-overlapping ``patch_size`` x ``patch_size`` patches to ``embed_dim`` tokens."""

from __future__ import annotations

import torch
from torch import nn


class PatchEmbed(nn.Module):
    """A strided convolution that turns an image into a row-major sequence of patch tokens.

    The parameter names (``proj.weight``, ``proj.bias``) follow the official DINOv2 checkpoints.

    Args:
        patch_size: Side of a square patch in pixels (14 for DINOv2).
        in_chans: Number of image channels.
        embed_dim: Width of a token.
    """

    def __init__(self, patch_size: int = 14, in_chans: int = 3, embed_dim: int = 384) -> None:
        super().__init__()
        self.patch_size = patch_size
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Embed the patches.

        Args:
            images: (B, in_chans, H, W) with H and W multiples of ``patch_size`` (checked by the caller).

        Returns:
            (B, (H / patch) * (W / patch), embed_dim) tokens, row by row.
        """
        return self.proj(images).flatten(2).transpose(1, 2)
