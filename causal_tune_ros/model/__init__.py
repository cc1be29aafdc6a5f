"""Pure-PyTorch model code: DINOv2 backbone, DCT, band-pass, Causal-Tune, heads and checkpoints.

Nothing here knows about ROS, messages or backends; it imports only :mod:`causal_tune_ros.band`,
:mod:`causal_tune_ros.errors` and :mod:`causal_tune_ros.fileio` from the rest of the package (checked by
the import contracts in setup.cfg). Files: ``dinov2.py`` + ``archs.py`` + ``layers/`` (the backbone),
``weights/`` (reading its weight files), ``dct.py``, ``band_pass.py``, ``tuner.py`` (Causal-Tune),
``heads.py`` / ``mask2former_head.py``, ``causal_tune.py`` (the segmenter), ``checkpoint.py``.
"""

from causal_tune_ros.model.causal_tune import CausalTune, CausalTuneSegmenter, evenly_spaced_layers
from causal_tune_ros.model.checkpoint import load_checkpoint, read_checkpoint_metadata, save_checkpoint
from causal_tune_ros.model.dinov2 import ARCHS, DinoV2, interpolate_pos_embed, load_backbone
from causal_tune_ros.model.heads import LightHead, build_head
from causal_tune_ros.model.weights import load_weights, save_official_checkpoint

__all__ = [
    "ARCHS",
    "CausalTune",
    "CausalTuneSegmenter",
    "DinoV2",
    "LightHead",
    "build_head",
    "evenly_spaced_layers",
    "interpolate_pos_embed",
    "load_backbone",
    "load_checkpoint",
    "load_weights",
    "read_checkpoint_metadata",
    "save_checkpoint",
    "save_official_checkpoint",
]
