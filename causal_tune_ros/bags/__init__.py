"""rosbag2 in and out through ``rosbags`` (no ROS install): open, iterate, (de)serialise, write.

Every failure of the underlying library is turned into :class:`~causal_tune_ros.errors.BagError` with the
bag path and the reason, so the CLI can print one clear line and exit with code 2.

Messages are (de)serialised as CDR with the ROS 2 Jazzy type store, so bags written here carry the same
``metadata.yaml`` layout, type hashes and serialisation that ``ros2 bag record`` writes, and ``ros2 bag play``
reads them on a vehicle.

One job per module: :mod:`.messages` (types, CDR, headers, QoS), :mod:`.paths` (storage choice, what a
bag occupies, what may be replaced), :mod:`.reader` (:class:`BagReader`), :mod:`.writer`
(:class:`BagWriter`, with the layout and guarantees of the bags written). No rclpy: the replay, the
synthetic drives, fleet and the node's bag player all use this package.
"""

from causal_tune_ros.bags.messages import (
    CAMERA_INFO_TYPE,
    COMPRESSED_IMAGE_TYPE,
    IMAGE_TYPE,
    IMAGE_TYPES,
    STRING_TYPE,
    TF_MESSAGE_TYPE,
    deserialize,
    make_header,
    msg_class,
    qos_profile,
    serialize,
    stamp_to_ns,
    typestore,
)
from causal_tune_ros.bags.paths import (
    STORAGE_OF_SUFFIX,
    STORAGES,
    bag_paths,
    check_not_overlapping,
    not_a_bag_reason,
    storage_file_stem,
    storage_for,
    storage_of,
)
from causal_tune_ros.bags.reader import (
    BagMessage,
    BagReader,
    open_bag,
)
from causal_tune_ros.bags.writer import (
    BAG_VERSIONS,
    DEFAULT_BAG_VERSION,
    BagWriter,
)

__all__ = [
    "BAG_VERSIONS",
    "CAMERA_INFO_TYPE",
    "COMPRESSED_IMAGE_TYPE",
    "DEFAULT_BAG_VERSION",
    "IMAGE_TYPE",
    "IMAGE_TYPES",
    "STORAGES",
    "STORAGE_OF_SUFFIX",
    "STRING_TYPE",
    "TF_MESSAGE_TYPE",
    "BagMessage",
    "BagReader",
    "BagWriter",
    "bag_paths",
    "check_not_overlapping",
    "deserialize",
    "make_header",
    "msg_class",
    "not_a_bag_reason",
    "open_bag",
    "qos_profile",
    "serialize",
    "stamp_to_ns",
    "storage_file_stem",
    "storage_for",
    "storage_of",
    "typestore",
]
