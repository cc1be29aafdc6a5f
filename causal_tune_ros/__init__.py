"""causal_tune_ros: weather-robust semantic segmentation for ROS 2 (frozen DINOv2 + Causal-Tune).

The model, backends, replay and training code import no ROS; only :mod:`causal_tune_ros.node` does.
"""

import os

# OpenMP threads that busy-wait between ops steal the CPU from every other process. On a vehicle
# computer that means other ROS nodes; on a shared 2-core box, inference on the main thread ran 30x
# slower. Passive waiting changes no result. It is set here because torch reads it once, when it is
# first imported, and every entry point imports this package before torch. An explicit user setting wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"
