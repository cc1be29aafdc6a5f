"""Which image topics of a bag are cameras, and the output topics derived from each camera topic.

Output topics per camera topic: ``<ns>/class_mask`` (mono8 train ids), ``<ns>/overlay`` (rgb8),
``<ns>/drivable_mask`` (mono8, 255 drivable) and ``<ns>/weather`` (std_msgs/String, the condition whose
band was used), where ``<ns>`` is the camera's namespace (:func:`camera_namespace`).
"""

from __future__ import annotations

from collections.abc import Sequence

#: Output sub-topics written per camera topic, in this order.
OUTPUT_NAMES = ("class_mask", "overlay", "drivable_mask", "weather")

#: Image-name suffixes stripped to find a camera's namespace (``/cam/image_raw/compressed`` -> ``/cam``).
_TRANSPORT_SUFFIXES = ("compressed",)


def camera_namespace(topic: str) -> str:
    """Namespace of a camera topic.

    ``/front/image_raw`` -> ``/front``; ``/front/image_raw/compressed`` -> ``/front``; ``/image`` -> ``""``.
    """
    parts = [p for p in topic.split("/") if p]
    if parts and parts[-1] in _TRANSPORT_SUFFIXES:
        parts = parts[:-1]
    parts = parts[:-1]
    return "/" + "/".join(parts) if parts else ""


#: Last name components of image topics that are not camera streams: our own outputs and label images.
NON_CAMERA_NAMES = frozenset({*OUTPUT_NAMES, "confidence", "ground_truth", "labels", "depth"})


def is_camera_topic(topic: str) -> bool:
    """Whether an image topic is a camera stream worth segmenting by default.

    Segmentation outputs (``.../class_mask``, ``.../overlay``, ...) and label or depth images
    (``.../ground_truth``, ``.../labels``, ``.../depth``) are images too, but segmenting them is
    meaningless (and a replayed bag would otherwise be segmented again); ``--topics`` still selects them.
    """
    parts = [p for p in topic.split("/") if p]
    if parts and parts[-1] in _TRANSPORT_SUFFIXES:
        parts = parts[:-1]
    return bool(parts) and parts[-1] not in NON_CAMERA_NAMES


def output_topics(image_topics: Sequence[str]) -> dict[str, dict[str, str]]:
    """Output topic names for each input image topic.

    Outputs go beside the camera (``<ns>/class_mask`` ...). When two input topics share a namespace
    (``/cam/image_raw`` and ``/cam/image_rect``) each uses its full topic name as namespace instead, so
    no two inputs ever write to the same output topic.

    Args:
        image_topics: Input image topics.

    Returns:
        ``{input_topic: {"class_mask": ..., "overlay": ..., "drivable_mask": ..., "weather": ...}}``.
    """
    namespaces = {t: camera_namespace(t) for t in image_topics}
    shared = {ns for ns in namespaces.values() if list(namespaces.values()).count(ns) > 1}
    result = {}
    for topic, ns in namespaces.items():
        base = topic.rstrip("/") if ns in shared else ns
        result[topic] = {name: f"{base}/{name}" for name in OUTPUT_NAMES}
    return result
