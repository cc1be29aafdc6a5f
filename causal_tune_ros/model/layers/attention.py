"""Multi-head self-attention with one fused qkv projection and PyTorch's fused attention kernel."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class Attention(nn.Module):
    """Bidirectional multi-head self-attention as in DINOv2 (``attn.qkv`` and ``attn.proj`` weights).

    One ``Linear`` produces q, k and v for all heads at once (out features ordered q | k | v, heads
    contiguous inside each) and :func:`torch.nn.functional.scaled_dot_product_attention` picks the
    fastest kernel for the device (flash / memory-efficient on CUDA, the fused CPU kernel on CPU);
    both are exportable to ONNX and TensorRT.

    Args:
        dim: Token width.
        num_heads: Number of heads; must divide ``dim``.
        qkv_bias: Whether the qkv projection has a bias.
        proj_bias: Whether the output projection has a bias.

    Raises:
        ValueError: If ``num_heads`` does not divide ``dim``.
    """

    def __init__(self, dim: int, num_heads: int, qkv_bias: bool = True, proj_bias: bool = True) -> None:
        super().__init__()
        if num_heads <= 0 or dim % num_heads:
            raise ValueError(f"num_heads ({num_heads}) must be a positive divisor of the width ({dim})")
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim, bias=proj_bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Attend every token to every token.

        Args:
            x: (B, N, dim) tokens.

        Returns:
            (B, N, dim) attention output after the output projection.
        """
        B, N, C = x.shape
        # (B, N, 3, heads, head_dim) -> 3 x (B, heads, N, head_dim) views, no copies.
        q, k, v = self.qkv(x).reshape(B, N, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4).unbind(0)
        x = F.scaled_dot_product_attention(q, k, v)
        return self.proj(x.transpose(1, 2).reshape(B, N, C))
