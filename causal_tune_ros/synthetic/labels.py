"""Train ids of the classes the synthetic scenes draw, read from the packaged class set.

The renderer draws the 19 Cityscapes classes; their ids come from ``config/classes.yaml`` (through
:func:`causal_tune_ros.classes.load_classes`), so labels always follow the package's class order.
"""

from __future__ import annotations

from causal_tune_ros.classes import load_classes

_CLASSES = load_classes()

ROAD = _CLASSES.index("road")
SIDEWALK = _CLASSES.index("sidewalk")
BUILDING = _CLASSES.index("building")
WALL = _CLASSES.index("wall")
FENCE = _CLASSES.index("fence")
POLE = _CLASSES.index("pole")
TRAFFIC_LIGHT = _CLASSES.index("traffic light")
TRAFFIC_SIGN = _CLASSES.index("traffic sign")
VEGETATION = _CLASSES.index("vegetation")
TERRAIN = _CLASSES.index("terrain")
SKY = _CLASSES.index("sky")
PERSON = _CLASSES.index("person")
RIDER = _CLASSES.index("rider")
CAR = _CLASSES.index("car")
TRUCK = _CLASSES.index("truck")
BUS = _CLASSES.index("bus")
TRAIN = _CLASSES.index("train")
MOTORCYCLE = _CLASSES.index("motorcycle")
BICYCLE = _CLASSES.index("bicycle")
#: Label of unlabelled pixels (never drawn by the renderer, kept for callers).
IGNORE = _CLASSES.ignore_id
