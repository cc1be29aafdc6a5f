"""causal_tune_ros: weather-robust semantic segmentation for ROS 2 (frozen DINOv2 + Causal-Tune).

The model, backends, replay and training code import no ROS; only :mod:`causal_tune_ros.node` does.
"""

__version__ = "0.1.0"
