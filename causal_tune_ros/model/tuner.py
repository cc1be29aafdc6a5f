"""Causal-Tune: the frequency-domain refinement of a frozen DINOv2 backbone's tokens (the learnable part).

After each tuned block ``i`` the block output ``f_i`` (B x (1 + R + N) x C) is refined (docs/METHOD.md);
with the default ``operator="spatial"`` (the paper as written):

1. the N patch tokens, read as a channel-last grid ``x`` (B, H, W, C), go to the DCT domain,
   ``X = D_H x D_W^T``;
2. the Gaussian band-pass ``G`` of the run-time band keeps the causal component ``X_c = G * X``;
3. every frequency position's C-vector attends to the layer's low-rank tokens ``T_i = A_i B_i``
   (m x r times r x C): ``S = softmax(X_c T_i^T / sqrt(C))``, ``Delta = MLP_out(S MLP_tok(T_i) + X_c)``
   with ``MLP_tok`` and ``MLP_out`` shared by all layers (single linear layers, as in Rein);
4. ``f_i' = f_i + s * IDCT(Delta)`` on the patch tokens; class and register tokens pass unchanged;
   ``s`` is one learnable scale, initialised small so the model starts as the frozen backbone.

Layout: tokens stay channel-last from end to end. The patch-token slice of ``f_i`` *is* the (B, H, W, C)
grid (rows of W tokens), so the DCT contracts H on a (B, H, W * C) view and W on (B * H, W, C) rows (see
:mod:`causal_tune_ros.model.dct`); the per-position work is then GEMMs on a (B * N, C) matrix with no
permute or contiguous copy anywhere: one C x C (``MLP_out``) and four thin ones, because the token
attention is evaluated through the rank-r factors (``X T^T = (X B^T) A^T``), an exact rewrite that costs
``(2 r + 1)(C + m)`` instead of ``2 m C`` multiply-adds per position. The band-pass is folded into the
DCT's W-stage matrices; ``s``, ``MLP_tok`` and ``MLP_out``'s bias into small per-layer matrices
(:meth:`CausalTune.prepare`, once per forward for all layers); the residual addition into the last IDCT
GEMM. No element-wise pass over the (B, N, C) tensor remains, only a softmax over the (B * N, m) scores.

Three other operators (``operator=``) change steps 1, 2 and 4 only; the token attention is the same:

- ``"channel"``: each patch token's C channels, laid out row by row as a ``sqrt(C) x sqrt(C)`` grid, get
  a 2-D DCT (one spectrum per token instead of one per channel), the Gaussian band-pass of that grid, the
  token attention, and the true inverse DCT. This is what the authors' released code transforms (its
  (B, N, C) -> (B, C, h, w) reshape without a permute, with N = C = 1024, makes each plane one token's
  channels), done differentiably and in-graph. C must be a square (ViT-L: 1024 = 32 x 32).
- ``"released"``: the released code's arithmetic on that channel grid, to reproduce its numbers: the DCT
  of the *detached* tokens, the fixed piecewise weight of
  :func:`~causal_tune_ros.model.band_pass.released_causal_weight` (the band input is ignored), and as
  "inverse" the real part of the orthonormal inverse 2-D FFT clamped to [0, 255], scaled by ``s``
  afterwards. Not an inverse DCT and not exportable; for research reproduction only.
- ``"rein"``: no DCT and no band-pass: the token attention runs on the patch tokens themselves,
  ``f_i' = f_i + s * MLP_out(S MLP_tok(T_i) + f_i)`` with ``S = softmax(f_i T_i^T / sqrt(C))``, which is
  Rein's refinement (Wei et al., CVPR 2024) with its low-rank tokens and shared projections. It is the
  ablation "the same tokens without the frequency domain": the band passed at run time is ignored.
  ``band_pass_enabled=False`` on a spatial model is *not* this: it still attends in the DCT domain, only
  over the unfiltered spectrum (the softmax per frequency position does not commute with the transform).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from causal_tune_ros.errors import ConfigError
from causal_tune_ros.model.dct import dct_2d, dct_2d_channels_last, idct_2d, idct_2d_channels_last

__all__ = [
    "LINEAR_BIAS_INITS",
    "OPERATORS",
    "TOKEN_INITS",
    "CausalTune",
    "Prepared",
    "evenly_spaced_layers",
    "is_being_exported",
]

#: Frequency operators of the refinement (see the module docstring).
OPERATORS = ("spatial", "channel", "released", "rein")
#: Token initialisation ranges: ``"dim"`` ``sqrt(6 / (3 p^2 + C))`` (Rein's full tokens), ``"lora"``
#: ``sqrt(6 / (3 p^2 + sqrt(C r)))`` (Rein's low-rank tokens, which the released Causal-Tune uses).
TOKEN_INITS = ("dim", "lora")
#: Bias initialisation of the two shared projections: ``"zero"`` or PyTorch's ``"default"`` uniform one.
LINEAR_BIAS_INITS = ("zero", "default")


def evenly_spaced_layers(depth: int, count: int = 4) -> list[int]:
    """``count`` block indices spread evenly over ``depth`` blocks, ending at the last block.

    ``ceil((k + 1) * depth / count) - 1`` for ``k = 0 .. count - 1``: ``[2, 5, 8, 11]`` for 12 blocks,
    ``[5, 11, 17, 23]`` for 24, ``[9, 19, 29, 39]`` for 40 (DINOv2's linear-probe layers). Shallow test
    models may repeat an index.

    Args:
        depth: Number of blocks (> 0).
        count: Number of indices (> 0).

    Returns:
        Non-decreasing list of ``count`` indices in ``[0, depth)``.

    Raises:
        ConfigError: If ``depth`` or ``count`` is not positive.
    """
    if depth <= 0 or count <= 0:
        raise ConfigError(f"evenly_spaced_layers needs depth > 0 and count > 0, got {depth}, {count}")
    return [math.ceil((k + 1) * depth / count) - 1 for k in range(count)]


def is_being_exported() -> bool:
    """True while an exporter (ONNX, ``torch.export``, Torch-TensorRT) traces the model."""
    is_exporting = getattr(getattr(torch, "compiler", None), "is_exporting", None)  # torch >= 2.5
    return bool(torch.onnx.is_in_onnx_export() or (is_exporting is not None and is_exporting()))


class Prepared(NamedTuple):
    """Per-forward tensors of :meth:`CausalTune.prepare` (L = tuned layers, m tokens, rank r)."""

    key_proj: torch.Tensor  # (L, C, r) = B_i^T / sqrt(C)
    key_tokens: torch.Tensor  # (L, r, m) = A_i^T
    value_mix: torch.Tensor  # (L, m, r + 1) = [A_i, 1]
    value_proj: torch.Tensor  # (L, r + 1, C) = s [B_i W_tok^T W_out^T; (W_out b_tok + b_out)^T]
    out_weight: torch.Tensor  # (C, C) = s W_out
    # With an attention sink, value_mix is (L, m, r + 2) = [A_i (row 0 zeroed), k, 1] with k the indicator
    # of tokens 1..m-1, and value_proj (L, r + 2, C) = s [B_i W_tok^T W_out^T; (W_out b_tok)^T; b_out^T].
    # For operator "released" s is not folded in (1 instead): the scale applies after the clamp.


class CausalTune(nn.Module):
    """The learnable part of Causal-Tune: per-layer low-rank tokens, two shared projections, one scale.

    Parameters (names as stored in checkpoints): ``tokens_a`` (L, m, r) and ``tokens_b`` (L, r, C), one
    slice per tuned layer (``T_i = tokens_a[i] @ tokens_b[i]``); ``mlp_token`` (``MLP_tok``) and
    ``mlp_out`` (``MLP_out``), ``Linear(C, C)`` shared by all layers; ``scale`` (``s``), a scalar.

    Args:
        embed_dim: Token width ``C``.
        layers: Backbone block indices refined, in increasing order (``L`` = their count).
        num_tokens: Tokens per layer ``m``.
        rank: Rank ``r`` of the token factorisation.
        scale_init: Initial ``s`` (1e-3 as in the official code; 0 reproduces the frozen backbone exactly).
        patch_size: Backbone patch size; only sets the token initialisation range (as Rein does).
        operator: ``"spatial"`` (default), ``"channel"``, ``"released"`` or ``"rein"`` (no frequency
            domain; see the module docstring).
        attention_sink: Token 0 takes part in the softmax but its value is dropped (``S[:, 1:]`` times
            ``MLP_tok(T[1:])``), as in Rein's and the released code.
        token_init: Token initialisation range, one of :data:`TOKEN_INITS`.
        token_init_patch: Patch size entering that range (``None``: ``patch_size``; the released code
            uses 16, the patch of its converted backbone).
        linear_bias_init: ``"zero"`` or ``"default"`` (PyTorch's, as the released code) for the biases of
            ``MLP_tok`` and ``MLP_out``.

    Raises:
        ConfigError: For non-positive sizes, an empty / unsorted / repeated layer list, an unknown option,
            a channel operator on a width that is not a square, or a sink with fewer than two tokens.
    """

    def __init__(
        self,
        embed_dim: int,
        layers: Sequence[int],
        num_tokens: int = 100,
        rank: int = 16,
        scale_init: float = 1e-3,
        patch_size: int = 14,
        operator: str = "spatial",
        attention_sink: bool = False,
        token_init: str = "dim",
        token_init_patch: int | None = None,
        linear_bias_init: str = "zero",
    ) -> None:
        super().__init__()
        layers = [int(i) for i in layers]
        if not layers or sorted(set(layers)) != layers:
            raise ConfigError(f"Causal-Tune layers must be a non-empty increasing list, got {layers}")
        for name, value in (("embed_dim", embed_dim), ("num_tokens", num_tokens), ("rank", rank)):
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ConfigError(f"Causal-Tune {name} must be a positive integer, got {value!r}")
        if not math.isfinite(float(scale_init)):
            raise ConfigError(f"Causal-Tune scale_init must be finite, got {scale_init!r}")
        for name, value, allowed in (
            ("operator", operator, OPERATORS),
            ("token_init", token_init, TOKEN_INITS),
            ("linear_bias_init", linear_bias_init, LINEAR_BIAS_INITS),
        ):
            if value not in allowed:
                raise ConfigError(f"Causal-Tune {name} must be one of {', '.join(allowed)}, got {value!r}")
        if token_init_patch is not None and (
            isinstance(token_init_patch, bool)
            or not isinstance(token_init_patch, int)
            or token_init_patch <= 0
        ):
            raise ConfigError(
                f"Causal-Tune token_init_patch must be a positive integer, got {token_init_patch!r}"
            )
        side = math.isqrt(embed_dim)
        if operator in ("channel", "released") and side * side != embed_dim:
            raise ConfigError(
                f"Causal-Tune operator {operator!r} lays each token's channels out as a square grid, but "
                f"the backbone width {embed_dim} is not a square (ViT-L's 1024 = 32 x 32 is); "
                "use operator 'spatial'"
            )
        if attention_sink and num_tokens < 2:
            raise ConfigError(
                f"Causal-Tune attention_sink needs at least 2 tokens, got num_tokens={num_tokens}"
            )
        self.operator = operator
        self.attention_sink = bool(attention_sink)
        self.token_init = token_init
        self.token_init_patch = token_init_patch
        self.linear_bias_init = linear_bias_init
        #: Side of the per-token channel grid of the channel operators (``sqrt(C)``).
        self.channel_side = side
        self.embed_dim = embed_dim
        self.layers: tuple[int, ...] = tuple(layers)
        self.num_tokens = num_tokens
        self.rank = rank
        self.scale_init = float(scale_init)
        self._slot = {layer: k for k, layer in enumerate(self.layers)}

        count = len(self.layers)
        self.tokens_a = nn.Parameter(torch.empty(count, num_tokens, rank))
        self.tokens_b = nn.Parameter(torch.empty(count, rank, embed_dim))
        self.mlp_token = nn.Linear(embed_dim, embed_dim)
        self.mlp_out = nn.Linear(embed_dim, embed_dim)
        self.scale = nn.Parameter(torch.tensor(self.scale_init))
        self.reset_parameters(patch_size)

    def reset_parameters(self, patch_size: int = 14) -> None:
        """Initialise tokens uniformly in a range sized like a ViT patch embedding's fan (as Rein does,
        :data:`TOKEN_INITS`), the projections with PyTorch's default ``Linear`` init (biases zero unless
        ``linear_bias_init="default"``) and ``s`` to ``scale_init``.

        Args:
            patch_size: Backbone patch size entering the token range (``token_init_patch`` wins if set).
        """
        p = self.token_init_patch or patch_size
        fan = float(self.embed_dim) if self.token_init == "dim" else math.sqrt(self.embed_dim * self.rank)
        bound = math.sqrt(6.0 / (3.0 * p * p + fan))
        nn.init.uniform_(self.tokens_a, -bound, bound)
        nn.init.uniform_(self.tokens_b, -bound, bound)
        for linear in (self.mlp_token, self.mlp_out):
            linear.reset_parameters()  # kaiming_uniform_(a=sqrt(5)) weight, uniform bias
            if self.linear_bias_init == "zero":
                nn.init.zeros_(linear.bias)
        with torch.no_grad():
            self.scale.fill_(self.scale_init)

    def extra_repr(self) -> str:
        return (
            f"layers={list(self.layers)}, num_tokens={self.num_tokens}, rank={self.rank}, "
            f"dim={self.embed_dim}, operator={self.operator}"
        )

    def spectrum_grid(self, grid: tuple[int, int]) -> tuple[int, int]:
        """The grid the spectrum weights live on: the patch grid (spatial) or the channel grid.

        Args:
            grid: Patch grid ``(H, W)``.

        Returns:
            ``grid`` for ``"spatial"``, ``(sqrt(C), sqrt(C))`` for the channel operators.
        """
        return grid if self.operator == "spatial" else (self.channel_side, self.channel_side)

    def tokens(self) -> torch.Tensor:
        """The full tokens ``T_i = A_i B_i`` of every tuned layer.

        Returns:
            (L, m, C) tensor.
        """
        return torch.bmm(self.tokens_a, self.tokens_b)

    def prepare(self) -> Prepared:
        """Per-forward constants that depend on the parameters only (computed once for all layers).

        Two exact rewrites make the per-position work small:

        - *low rank*: ``T_i = A_i B_i``, so the scores ``X_c T_i^T = (X_c B_i^T) A_i^T`` cost
          ``r (C + m)`` instead of ``m C`` per position, and since ``MLP_tok`` and ``MLP_out`` are affine,
          ``MLP_out(MLP_tok(T_i)) = A_i (B_i W_tok^T W_out^T) + 1 c^T`` with ``c = W_out b_tok + b_out``;
        - *row sums*: every row of ``S`` sums to one, so ``S 1 c^T = 1 c^T``: appending a column of ones
          to ``A_i`` (``[A_i, 1]``) and the row ``c^T`` to the value basis carries the bias in the same GEMM.

        With ``s`` folded into the weights, ``s * MLP_out(S MLP_tok(T_i) + X_c)`` becomes
        ``X_c (s W_out)^T + (S [A_i, 1]) (s [B_i W_tok^T W_out^T; c^T])``.

        With an attention sink the rows of ``S[:, 1:]`` no longer sum to one: their sum ``S k`` (``k`` the
        indicator of tokens 1..m-1) multiplies ``W_out b_tok`` and ``b_out`` is added once, both carried
        by two extra columns (see :class:`Prepared`).

        Returns:
            :class:`Prepared` tensors for all tuned layers.
        """
        C = self.embed_dim
        a, b = self.tokens_a, self.tokens_b  # (L, m, r), (L, r, C)
        L = a.shape[0]
        w_out = self.mlp_out.weight
        # The released code scales after its clamp: nothing folded.
        scale = self.scale if self.operator != "released" else torch.ones_like(self.scale)
        value_basis = F.linear(F.linear(b, self.mlp_token.weight), w_out)  # (L, r, C): B W_tok^T W_out^T
        ones = torch.ones_like(a[..., :1])
        if self.attention_sink:
            keep = torch.ones_like(ones)
            keep[:, 0] = 0.0
            value_mix = torch.cat((a * keep, keep, ones), dim=-1)
            token_bias = F.linear(self.mlp_token.bias, w_out)  # (C,): W_out b_tok
            value_proj = torch.cat(
                (value_basis, token_bias.expand(L, 1, C), self.mlp_out.bias.expand(L, 1, C)), dim=1
            )
        else:
            value_mix = torch.cat((a, ones), dim=-1)
            value_bias = self.mlp_out(self.mlp_token.bias)  # (C,): W_out b_tok + b_out
            value_proj = torch.cat((value_basis, value_bias.expand(L, 1, C)), dim=1)
        return Prepared(
            key_proj=b.transpose(1, 2) * (1.0 / math.sqrt(C)),
            key_tokens=a.transpose(1, 2),
            value_mix=value_mix,
            value_proj=value_proj * scale,
            out_weight=w_out * scale,
        )

    def refine(
        self,
        tokens: torch.Tensor,
        layer: int,
        grid: tuple[int, int],
        num_prefix_tokens: int,
        mask: torch.Tensor | None,
        prepared: Prepared,
    ) -> torch.Tensor:
        """Refine one block's output: ``f' = f + s * IDCT(MLP_out(S MLP_tok(T) + X_c))`` on patch tokens.

        Under ``torch.inference_mode`` the update is accumulated into ``tokens`` in place (the block output
        is not needed afterwards; this saves a copy of the whole token tensor per layer). Otherwise, for
        autograd and graph export, a new tensor is returned and ``tokens`` is left untouched.

        Args:
            tokens: (B, P + H * W, C) block output (P prefix tokens, then patches row by row).
            layer: Backbone block index (one of ``layers``).
            grid: Patch grid ``(H, W)``.
            num_prefix_tokens: ``P`` = 1 + register tokens; these pass through bit-identical.
            mask: Spectrum weights on :meth:`spectrum_grid` in ``tokens``' dtype (the band-pass ``G``, or the
                released weight), or ``None`` for the full spectrum.
            prepared: The output of :meth:`prepare`.

        Returns:
            (B, P + H * W, C) refined tokens.
        """
        if self.operator == "rein":
            return self._refine_rein(tokens, layer, num_prefix_tokens, prepared)
        if self.operator != "spatial":
            return self._refine_channels(tokens, layer, num_prefix_tokens, mask, prepared)
        k = self._slot[layer]
        B, _, C = tokens.shape
        H, W = grid
        patches = tokens[:, num_prefix_tokens:].view(B, H, W, C)  # a view: rows of the patch grid
        spectrum = dct_2d_channels_last(patches, mask)  # G * X, contiguous (B, H, W, C)
        flat = spectrum.view(B * H * W, C)
        scores = torch.mm(torch.mm(flat, prepared.key_proj[k]), prepared.key_tokens[k])  # X_c T^T / sqrt(C)
        mix = torch.mm(torch.softmax(scores, dim=-1), prepared.value_mix[k])  # S [A, 1]
        # s * MLP_out(S MLP_tok(T) + X_c); addmm_ accumulates the token term in place.
        delta = torch.mm(flat, prepared.out_weight.t()).addmm_(mix, prepared.value_proj[k]).view(B, H, W, C)
        # In place only in eager inference: torch.compile cannot trace the inference-mode query (a graph
        # break), and a compiled graph fuses the out-of-place form anyway.
        if not torch.compiler.is_compiling() and torch.is_inference_mode_enabled():
            idct_2d_channels_last(delta, patches, inplace=True)
            return tokens
        refined = idct_2d_channels_last(delta, patches).view(B, H * W, C)  # patches + IDCT(delta)
        return torch.cat((tokens[:, :num_prefix_tokens], refined), dim=1)

    def _token_update(self, flat: torch.Tensor, k: int, prepared: Prepared) -> torch.Tensor:
        """``MLP_out(S MLP_tok(T_k) + X)`` (times ``s`` where folded) for (M, C) spectra ``flat``."""
        scores = torch.mm(torch.mm(flat, prepared.key_proj[k]), prepared.key_tokens[k])
        mix = torch.mm(torch.softmax(scores, dim=-1), prepared.value_mix[k])
        return torch.mm(flat, prepared.out_weight.t()).addmm_(mix, prepared.value_proj[k])

    def _refine_rein(
        self, tokens: torch.Tensor, layer: int, num_prefix_tokens: int, prepared: Prepared
    ) -> torch.Tensor:
        """The ``"rein"`` operator: ``f' = f + s * MLP_out(S MLP_tok(T) + f)`` on the patch tokens."""
        B, _, C = tokens.shape
        patches = tokens[:, num_prefix_tokens:]
        delta = self._token_update(patches.reshape(-1, C), self._slot[layer], prepared)
        refined = patches + delta.view(B, -1, C)
        return torch.cat((tokens[:, :num_prefix_tokens], refined), dim=1)

    def _refine_channels(
        self,
        tokens: torch.Tensor,
        layer: int,
        num_prefix_tokens: int,
        weight: torch.Tensor | None,
        prepared: Prepared,
    ) -> torch.Tensor:
        """The ``"channel"`` and ``"released"`` operators: one 2-D spectrum per token's channel grid."""
        B, _, C = tokens.shape
        s = self.channel_side
        patches = tokens[:, num_prefix_tokens:]  # (B, N, C)
        N = patches.shape[1]
        grid = patches.reshape(B * N, s, s)  # each token's channels, row by row
        released = self.operator == "released"
        spectrum = dct_2d(grid.detach() if released else grid)  # the released DCT runs on detached numpy
        if weight is not None:
            spectrum = spectrum * weight
        delta = self._token_update(spectrum.reshape(B * N, C), self._slot[layer], prepared).view(B * N, s, s)
        if released:
            # Real part of the orthonormal inverse 2-D FFT, clamped as released, then scaled.
            complex_dtype = torch.complex128 if delta.dtype == torch.float64 else torch.complex64
            real = delta.to(torch.float64 if delta.dtype == torch.float64 else torch.float32)  # no bf16 FFT
            inverse = torch.fft.ifft2(real.to(complex_dtype), norm="ortho").real.clamp(0.0, 255.0)
            update = inverse.to(tokens.dtype) * self.scale
        else:
            update = idct_2d(delta)
        refined = patches + update.reshape(B, N, C)
        return torch.cat((tokens[:, :num_prefix_tokens], refined), dim=1)
