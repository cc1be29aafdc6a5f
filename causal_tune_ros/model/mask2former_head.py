"""Mask2Former-style mask-classification head: the accuracy option the paper reports with.

Structure (Cheng et al., "Masked-attention Mask Transformer", CVPR 2022), rebuilt from plain layers so that
it exports to ONNX / TensorRT: no deformable attention and no custom CUDA op.

- **Pixel decoder** (light, ViTDet "simple feature pyramid" style): the four ViT grids (all at 1/14 of the
  input) are each projected to ``hidden_dim`` by a 1x1 convolution and resampled to their own scale:
  grid 0 x4 (two stride-2 transposed convolutions), grid 1 x2, grid 2 x1, grid 3 x1/2 (max-pool). A
  top-down FPN pass (upsample + add + 3x3 convolution) fuses them. The finest map (1/3.5 of the input) gives
  the per-pixel *mask features*; the three coarser ones (1/28, 1/14, 1/7) are the *memory* the queries
  attend to, coarsest first, with sine positional encodings and a learned level embedding.
- **Transformer decoder**: ``num_queries`` learned queries; each layer does masked cross-attention to one
  memory level (round robin), then self-attention, then an FFN (post-norm, as Mask2Former). The attention
  mask of layer ``j`` comes from the mask predicted *before* it: a query may only look at memory positions
  where its mask is in the foreground (``sigmoid >= 0.5``, i.e. logit >= 0); a query whose mask is empty
  at that level attends everywhere (otherwise its softmax row would be undefined).
- **Query linking** (``link_queries=True``, Rein's design, which the released Causal-Tune keeps): the
  queries are not free embeddings but come from the Causal-Tune tokens ``T`` (L layers x m tokens x C):
  a shared ``Linear(C, D)`` per layer, then per token the maximum and the mean over layers and the last
  layer's value, concatenated and merged by ``Linear(3 D, D)`` into ``m x D`` queries. They serve as the
  query positions, and a ``Linear(D, D)`` projection of them as the initial query features, so the head's
  loss trains the tokens through this path too.
- **Predictions** after the query initialisation and after every layer: class logits over ``K + 1``
  classes (the last one is "no object") and mask logits as the dot product of a 3-layer MLP of the query
  with the mask features.

Output contract (the segmenter passes the head's output straight through):

- ``head.training`` True: ``{"pred_logits": (B, Q, K + 1), "pred_masks": (B, Q, h, w), "aux_outputs":
  [{"pred_logits", "pred_masks"}, ...]}`` with ``(h, w)`` the mask-feature size (4x the patch grid) and one
  aux entry per decoder layer (the earlier predictions, for deep supervision); train it with
  :class:`causal_tune_ros.training.losses.SetCriterion`.
- ``head.training`` False (evaluation, every backend, export): semantic scores (B, K, *out_size),
  ``einsum("bqk,bqhw->bkhw", softmax(class)[..., :-1], sigmoid(mask))`` (Mask2Former's semantic inference),
  computed at mask-feature resolution and resized bilinearly to ``out_size`` (K maps to resize instead of Q).
  With ``eval_output="log_scores"`` the head returns ``log(max(scores, 1e-6))`` instead: the same arg-max,
  but a softmax over it is then the normalised score ``s_k / sum(s)``, a meaningful confidence for the
  pipeline, which computes confidence as the maximum softmax of the head's output.

Exact shortcut: the attention masks are needed at the three memory resolutions only. Bilinear resizing and
the query/feature dot product are both linear, so resizing the mask features once per level and taking the
dot product there equals Mask2Former's "predict at full resolution, then resize" (to float rounding); in
evaluation the intermediate layers therefore never compute a full-resolution mask.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from causal_tune_ros.errors import ConfigError
from causal_tune_ros.model.head_checks import check_dropout, check_feature_grids, check_positive_ints

__all__ = ["EVAL_OUTPUTS", "NUM_FEATURE_LEVELS", "Mask2FormerHead", "sine_position_embedding"]

#: Memory levels the transformer decoder attends to, in round robin (1/28, 1/14, 1/7 of the input).
NUM_FEATURE_LEVELS = 3
#: What the head returns in eval mode (see the module docstring).
EVAL_OUTPUTS = ("scores", "log_scores")
#: Floor of the scores before the logarithm of ``eval_output="log_scores"``.
_LOG_FLOOR = 1e-6


def _group_norm(channels: int) -> nn.GroupNorm:
    # GroupNorm, not BatchNorm: batch-size independent (the paper trains with batch 4) and identical in
    # train and eval mode.
    groups = next(g for g in (32, 16, 8, 4, 2, 1) if channels % g == 0)
    return nn.GroupNorm(groups, channels)


def sine_position_embedding(
    height: int, width: int, dim: int, device: torch.device | None = None
) -> torch.Tensor:
    """Normalised 2-D sine positional encoding (DETR / Mask2Former ``PositionEmbeddingSine``).

    The first ``dim / 2`` channels encode the row, the last ``dim / 2`` the column; positions are the pixel
    centres normalised to (0, 2 pi), so grids of different sizes share one frequency range.

    Args:
        height: Rows of the grid.
        width: Columns of the grid.
        dim: Channels, a multiple of 4.
        device: Device of the result.

    Returns:
        (height * width, dim) float32 tensor, rows in row-major pixel order.

    Raises:
        ConfigError: If ``dim`` is not a positive multiple of 4.
    """
    if dim <= 0 or dim % 4:
        raise ConfigError(f"sine position embedding needs a positive multiple of 4 channels, got {dim}")
    feats = dim // 2
    scale = 2.0 * math.pi
    y = (torch.arange(height, device=device, dtype=torch.float32) + 0.5) / height * scale
    x = (torch.arange(width, device=device, dtype=torch.float32) + 0.5) / width * scale
    index = torch.arange(feats, device=device, dtype=torch.float32)
    freq = 10000.0 ** (2.0 * torch.div(index, 2, rounding_mode="floor") / feats)

    def encode(pos: torch.Tensor) -> torch.Tensor:  # (n,) -> (n, feats): sin on even, cos on odd channels
        angles = pos[:, None] / freq
        return torch.stack((angles[:, 0::2].sin(), angles[:, 1::2].cos()), dim=-1).flatten(1)

    pos_y = encode(y)[:, None, :].expand(height, width, feats)
    pos_x = encode(x)[None, :, :].expand(height, width, feats)
    return torch.cat((pos_y, pos_x), dim=-1).reshape(height * width, dim)


class _Attention(nn.Module):
    """Multi-head attention through ``F.scaled_dot_product_attention`` (exportable, fused where available)."""

    def __init__(self, dim: int, num_heads: int, dropout: float) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.dropout = dropout
        self.q_proj = nn.Linear(dim, dim)
        self.k_proj = nn.Linear(dim, dim)
        self.v_proj = nn.Linear(dim, dim)
        self.out_proj = nn.Linear(dim, dim)

    def _heads(self, x: torch.Tensor) -> torch.Tensor:  # (B, N, D) -> (B, heads, N, D / heads)
        B, N, D = x.shape
        return x.view(B, N, self.num_heads, D // self.num_heads).transpose(1, 2)

    def forward(
        self, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        B, Q, D = query.shape
        q = self._heads(self.q_proj(query))
        out = F.scaled_dot_product_attention(
            q,
            self._heads(self.k_proj(key)),
            self._heads(self.v_proj(value)),
            attn_mask=None if mask is None else mask.to(q.dtype),  # autocast may leave them apart
            dropout_p=self.dropout if self.training else 0.0,
        )
        return self.out_proj(out.transpose(1, 2).reshape(B, Q, D))


class _DecoderLayer(nn.Module):
    """Masked cross-attention -> self-attention -> FFN, each with a residual and a post LayerNorm."""

    def __init__(self, dim: int, num_heads: int, dim_feedforward: int, dropout: float) -> None:
        super().__init__()
        self.cross_attn = _Attention(dim, num_heads, dropout)
        self.norm_cross = nn.LayerNorm(dim)
        self.self_attn = _Attention(dim, num_heads, dropout)
        self.norm_self = nn.LayerNorm(dim)
        self.ffn = nn.Sequential(
            nn.Linear(dim, dim_feedforward),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(dim_feedforward, dim),
        )
        self.norm_ffn = nn.LayerNorm(dim)
        self.drop = nn.Dropout(dropout)

    def forward(
        self,
        queries: torch.Tensor,
        query_pos: torch.Tensor,
        memory: torch.Tensor,
        memory_pos: torch.Tensor,
        mask: torch.Tensor,
    ) -> torch.Tensor:
        x = self.norm_cross(
            queries + self.drop(self.cross_attn(queries + query_pos, memory + memory_pos, memory, mask))
        )
        q = x + query_pos
        x = self.norm_self(x + self.drop(self.self_attn(q, q, x)))
        return self.norm_ffn(x + self.drop(self.ffn(x)))


class _PixelDecoder(nn.Module):
    """Four 1/14 ViT grids -> mask features (x4) and three memory maps (x1/2, x1, x2), all ``dim`` wide."""

    def __init__(self, in_channels: int, dim: int) -> None:
        super().__init__()
        self.lateral = nn.ModuleList(
            nn.Sequential(nn.Conv2d(in_channels, dim, kernel_size=1, bias=False), _group_norm(dim))
            for _ in range(4)
        )
        # Per-input resampling to its own scale (ViTDet simple pyramid), after the projection (cheaper).
        self.resample = nn.ModuleList(
            [
                nn.Sequential(
                    nn.ConvTranspose2d(dim, dim, kernel_size=2, stride=2),
                    _group_norm(dim),
                    nn.GELU(),
                    nn.ConvTranspose2d(dim, dim, kernel_size=2, stride=2),
                ),
                nn.ConvTranspose2d(dim, dim, kernel_size=2, stride=2),
                nn.Identity(),
                # ceil_mode: a 1-row grid still gives a 1-row map.
                nn.MaxPool2d(kernel_size=2, stride=2, ceil_mode=True),
            ]
        )
        self.output = nn.ModuleList(
            nn.Sequential(
                nn.Conv2d(dim, dim, kernel_size=3, padding=1, bias=False),
                _group_norm(dim),
                nn.ReLU(inplace=True),
            )
            for _ in range(4)
        )
        self.mask_proj = nn.Conv2d(dim, dim, kernel_size=1)
        for module in self.modules():
            if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
                nn.init.kaiming_uniform_(module.weight, a=1)  # Detectron2's c2_xavier_fill
                if module.bias is not None:
                    nn.init.zeros_(module.bias)

    def forward(self, features: Sequence[torch.Tensor]) -> tuple[torch.Tensor, list[torch.Tensor]]:
        maps = [
            resample(lateral(f))
            for lateral, resample, f in zip(self.lateral, self.resample, features, strict=True)
        ]
        # Top-down: coarsest (1/28) first; explicit sizes so odd grid sides line up.
        out = self.output[3](maps[3])
        pyramid = [out]
        for k in (2, 1, 0):
            up = F.interpolate(out, size=maps[k].shape[-2:], mode="bilinear", align_corners=False)
            out = self.output[k](maps[k] + up)
            pyramid.append(out)
        # pyramid: 1/28, 1/14, 1/7, 1/3.5; the last one becomes the mask features.
        return self.mask_proj(pyramid[3]), pyramid[:NUM_FEATURE_LEVELS]


class _MLP(nn.Module):
    """``layers`` Linear layers with ReLU between them (Mask2Former's mask embedding)."""

    def __init__(self, dim: int, out_dim: int, layers: int) -> None:
        super().__init__()
        widths = [dim] * layers + [out_dim]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in itertools.pairwise(widths))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for k, layer in enumerate(self.layers):
            x = layer(x)
            if k < len(self.layers) - 1:
                x = F.relu(x)
        return x


class Mask2FormerHead(nn.Module):
    """Mask-classification decode head (Mask2Former style, plain attention; see the module docstring).

    Args:
        in_channels: Width ``C`` of every input feature grid (the backbone's ``embed_dim``).
        num_classes: Number of semantic classes ``K`` (a ``K + 1``-th "no object" class is added inside).
        num_queries: Learned queries ``Q`` (100 in the paper).
        hidden_dim: Width of the pixel decoder, queries and mask embeddings (a multiple of 4 and of
            ``num_heads``).
        num_decoder_layers: Transformer decoder layers (6 by default for real time; the paper's Mask2Former
            uses 9, i.e. three rounds over the three memory levels).
        num_heads: Attention heads.
        dim_feedforward: Hidden width of the decoder FFNs.
        dropout: Dropout in the decoder (0 as in Mask2Former).
        eval_output: ``"scores"`` (Mask2Former's semantic scores) or ``"log_scores"`` (their logarithm, whose
            softmax is the normalised score: a calibrated-looking confidence in the pipeline).
        link_queries: Build the queries from the tuner's tokens (see the module docstring) instead of
            learning ``query_feat`` / ``query_embed``; ``forward`` then needs ``tokens``.

    Attributes:
        num_inputs: 4, the number of feature grids the head takes.

    Raises:
        ConfigError: For non-positive sizes, a ``hidden_dim`` not divisible by 4 or by ``num_heads``, a
            dropout outside [0, 1) or an unknown ``eval_output``.
    """

    num_inputs = 4

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        num_queries: int = 100,
        hidden_dim: int = 256,
        num_decoder_layers: int = 6,
        num_heads: int = 8,
        dim_feedforward: int = 1024,
        dropout: float = 0.0,
        eval_output: str = "scores",
        link_queries: bool = False,
    ) -> None:
        super().__init__()
        check_positive_ints(
            "Mask2FormerHead",
            (
                ("in_channels", in_channels),
                ("num_classes", num_classes),
                ("num_queries", num_queries),
                ("hidden_dim", hidden_dim),
                ("num_decoder_layers", num_decoder_layers),
                ("num_heads", num_heads),
                ("dim_feedforward", dim_feedforward),
            ),
        )
        if hidden_dim % 4 or hidden_dim % num_heads:
            raise ConfigError(
                f"Mask2FormerHead hidden_dim ({hidden_dim}) must be a multiple of 4 (sine positions) and of "
                f"num_heads ({num_heads})"
            )
        check_dropout("Mask2FormerHead", dropout)
        if eval_output not in EVAL_OUTPUTS:
            raise ConfigError(
                f"Mask2FormerHead eval_output must be one of {', '.join(EVAL_OUTPUTS)}, got {eval_output!r}"
            )
        self.in_channels = in_channels
        self.num_classes = num_classes
        self.num_queries = num_queries
        self.hidden_dim = hidden_dim
        self.num_decoder_layers = num_decoder_layers
        self.num_heads = num_heads
        self.dim_feedforward = dim_feedforward
        self.dropout = float(dropout)
        self.eval_output = eval_output
        if not isinstance(link_queries, bool):
            raise ConfigError(f"Mask2FormerHead link_queries must be true or false, got {link_queries!r}")
        self.link_queries = link_queries

        self.pixel_decoder = _PixelDecoder(in_channels, hidden_dim)
        if link_queries:
            self.query_transform = nn.Linear(in_channels, hidden_dim)
            self.query_merge = nn.Linear(3 * hidden_dim, hidden_dim)
            self.query_proj = nn.Linear(hidden_dim, hidden_dim)
        else:
            self.query_feat = nn.Embedding(num_queries, hidden_dim)
            self.query_embed = nn.Embedding(num_queries, hidden_dim)
        self.level_embed = nn.Embedding(NUM_FEATURE_LEVELS, hidden_dim)
        self.layers = nn.ModuleList(
            _DecoderLayer(hidden_dim, num_heads, dim_feedforward, self.dropout)
            for _ in range(num_decoder_layers)
        )
        self.decoder_norm = nn.LayerNorm(hidden_dim)
        self.class_embed = nn.Linear(hidden_dim, num_classes + 1)
        self.mask_embed = _MLP(hidden_dim, hidden_dim, 3)
        for name, param in self.named_parameters():
            # The query-linking layers keep PyTorch's Linear init, as in Rein.
            if not name.startswith(
                ("pixel_decoder.", "query_transform.", "query_merge.", "query_proj.")
            ) and (param.dim() > 1):
                nn.init.xavier_uniform_(param)

    @property
    def config(self) -> dict[str, Any]:
        """JSON-able constructor arguments plus ``"type"``; :func:`~.heads.build_head` rebuilds the head."""
        return {
            "type": type(self).__name__,
            "in_channels": self.in_channels,
            "num_classes": self.num_classes,
            "num_queries": self.num_queries,
            "hidden_dim": self.hidden_dim,
            "num_decoder_layers": self.num_decoder_layers,
            "num_heads": self.num_heads,
            "dim_feedforward": self.dim_feedforward,
            "dropout": self.dropout,
            "eval_output": self.eval_output,
            "link_queries": self.link_queries,
        }

    def _check(self, features: Sequence[torch.Tensor]) -> None:
        check_feature_grids("Mask2FormerHead", features, self.num_inputs, self.in_channels)

    def linked_queries(self, tokens: torch.Tensor) -> torch.Tensor:
        """Queries from the tuner's tokens: per-layer transform, pooled over layers, merged.

        Args:
            tokens: (L, num_queries, in_channels) tokens ``T_i`` of every tuned layer, in layer order.

        Returns:
            (num_queries, hidden_dim) queries (used as query positions; their projection as features).

        Raises:
            ValueError: If the head does not link queries or ``tokens`` has the wrong shape.
        """
        if not self.link_queries:
            raise ValueError("this Mask2FormerHead was built with link_queries=False")
        if tokens.ndim != 3 or tokens.shape[1:] != (self.num_queries, self.in_channels):
            raise ValueError(
                f"tokens must be (layers, {self.num_queries}, {self.in_channels}), got {tuple(tokens.shape)}"
            )
        per_layer = self.query_transform(tokens)  # (L, Q, D)
        pooled = torch.cat((per_layer.amax(dim=0), per_layer.mean(dim=0), per_layer[-1]), dim=-1)  # (Q, 3D)
        return self.query_merge(pooled)

    def forward(
        self,
        features: Sequence[torch.Tensor],
        out_size: tuple[int, int],
        tokens: torch.Tensor | None = None,
    ) -> torch.Tensor | dict[str, Any]:
        """Predict masks and classes; in eval mode, combine them into semantic scores.

        Args:
            features: 4 tensors (B, in_channels, h, w), all the same shape (the ViT patch grids).
            out_size: Output ``(height, width)`` of the eval-mode scores, usually ``(H // 4, W // 4)``.
            tokens: With ``link_queries``: the tuner's (L, num_queries, in_channels) tokens (required);
                otherwise must be ``None``.

        Returns:
            Training mode: dict with ``pred_logits`` (B, Q, K + 1), ``pred_masks`` (B, Q, 4h, 4w) (logits)
            and ``aux_outputs``, a list of ``num_decoder_layers`` dicts with the same two keys (the
            predictions before each layer). Eval mode: (B, K, *out_size) semantic scores (or their log,
            see ``eval_output``).

        Raises:
            ValueError: For the wrong number of features or mismatched / wrongly sized grids, or ``tokens``
                missing (linked queries), given (free queries) or wrongly shaped.
        """
        self._check(features)
        if self.link_queries and tokens is None:
            raise ValueError("this Mask2FormerHead links its queries to the tuner's tokens: pass tokens=")
        if not self.link_queries and tokens is not None:
            raise ValueError("tokens given to a Mask2FormerHead with link_queries=False")
        mask_features, levels = self.pixel_decoder(features)
        B = mask_features.shape[0]
        memories, positions, level_features = [], [], []
        for k, level in enumerate(levels):
            h, w = level.shape[-2:]
            memories.append(level.flatten(2).transpose(1, 2) + self.level_embed.weight[k])
            positions.append(sine_position_embedding(h, w, self.hidden_dim, level.device).to(level.dtype))
            # Mask features at this level's size: mask logits there == resized full-resolution logits.
            level_features.append(
                F.interpolate(mask_features, size=(h, w), mode="bilinear", align_corners=False).flatten(2)
            )

        if tokens is not None:
            linked = self.linked_queries(tokens.to(mask_features.dtype))
            queries = self.query_proj(linked).unsqueeze(0).expand(B, -1, -1)
            query_pos = linked.unsqueeze(0)
        else:
            queries = self.query_feat.weight.unsqueeze(0).expand(B, -1, -1)
            query_pos = self.query_embed.weight.unsqueeze(0)
        predictions: list[dict[str, torch.Tensor]] = []
        for j in range(self.num_decoder_layers + 1):
            decoded = self.decoder_norm(queries)
            embedding = self.mask_embed(decoded)
            if self.training or j == self.num_decoder_layers:
                predictions.append(
                    {
                        "pred_logits": self.class_embed(decoded),
                        "pred_masks": torch.einsum("bqc,bchw->bqhw", embedding, mask_features),
                    }
                )
            if j == self.num_decoder_layers:
                break
            k = j % NUM_FEATURE_LEVELS
            mask = self._attention_mask(torch.bmm(embedding, level_features[k]))
            queries = self.layers[j](queries, query_pos, memories[k], positions[k], mask)

        final = predictions[-1]
        if self.training:
            return {**final, "aux_outputs": predictions[:-1]}
        return self.semantic_scores(final["pred_logits"], final["pred_masks"], out_size)

    @staticmethod
    def _attention_mask(mask_logits: torch.Tensor) -> torch.Tensor:
        """(B, Q, N) mask logits -> (B, 1, Q, N) additive attention bias (0 = attend, -inf = blocked).

        Foreground is ``sigmoid >= 0.5`` (logit >= 0); an all-background row attends everywhere. The mask is
        a constant for autograd (as in Mask2Former). An additive float bias rather than a boolean mask:
        the form every exporter and TensorRT accept.
        """
        blocked = mask_logits.detach() < 0
        blocked = blocked & ~blocked.all(dim=-1, keepdim=True)
        bias = torch.zeros_like(mask_logits, dtype=mask_logits.dtype).masked_fill(blocked, float("-inf"))
        return bias.unsqueeze(1)

    def semantic_scores(
        self, pred_logits: torch.Tensor, pred_masks: torch.Tensor, out_size: tuple[int, int]
    ) -> torch.Tensor:
        """Combine class and mask predictions into per-class scores (Mask2Former semantic inference).

        Args:
            pred_logits: (B, Q, K + 1) class logits.
            pred_masks: (B, Q, h, w) mask logits.
            out_size: Output ``(height, width)``.

        Returns:
            (B, K, *out_size): ``sum_q softmax(class)_qk sigmoid(mask)_q``, resized bilinearly; its logarithm
            (floored at 1e-6) when ``eval_output == "log_scores"``.
        """
        probs = pred_logits.softmax(dim=-1)[..., :-1]
        scores = torch.einsum("bqk,bqhw->bkhw", probs, pred_masks.sigmoid())
        scores = F.interpolate(
            scores, size=(int(out_size[0]), int(out_size[1])), mode="bilinear", align_corners=False
        )
        if self.eval_output == "log_scores":
            scores = scores.clamp_min(_LOG_FLOOR).log()
        return scores
