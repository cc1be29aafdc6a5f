"""Procedural street scenes with exact labels and depth, rendered under five weather conditions.

>>> from causal_tune_ros.synthetic import render_scene, render_conditions
>>> frame = render_scene(7, "snow", 256, 512)       # image, labels, depth, condition, K, ground_pose
>>> frames = render_conditions(7, ("clear", "night"), 256, 512)   # same scene, geometry computed once

numpy and OpenCV only (no torch, no ROS); bag writing lives in :mod:`causal_tune_ros.synthetic.bag`.
"""

from causal_tune_ros.synthetic.render import SyntheticFrame, render_conditions, render_scene
from causal_tune_ros.weather.conditions import CONDITIONS

__all__ = ["CONDITIONS", "SyntheticFrame", "render_conditions", "render_scene"]
