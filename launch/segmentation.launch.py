"""Launch the causal_tune_ros segmentation node (and optionally RViz) on a real ROS 2 install.

    ros2 launch causal_tune_ros segmentation.launch.py camera:=/front/image_raw
    ros2 launch causal_tune_ros segmentation.launch.py camera:=/front/image_raw transport:=compressed \
        params_file:=/path/to/my.yaml use_sim_time:=true rviz:=true namespace:=front
    ros2 launch causal_tune_ros segmentation.launch.py lifecycle:=true   # managed node, driven to active
    ros2 launch causal_tune_ros segmentation.launch.py cameras:=front,rear rviz:=true   # one node, 2 cameras

Works the same on ROS 2 Humble and Jazzy.

Arguments:
    camera: Raw image topic. The node subscribes to it (transport raw) or to ``<camera>/compressed``
        (transport compressed), and to ``camera_info`` beside it (``<camera dir>/camera_info``).
        A relative name resolves in ``namespace``.
    cameras: Camera names for the multi-camera node (``front,rear``; default empty: one camera, from
        ``camera``). Sets the ``cameras`` parameter; each camera's topics come from ``camera_pattern``.
    camera_pattern: Raw image topic of each camera of ``cameras``, ``{name}`` standing for its name
        (default ``/{name}/image_raw``); ``<topic>/compressed`` and the sibling ``camera_info`` follow.
    transport: raw | compressed (sets the ``input_transport`` parameter).
    params_file: Parameter YAML (default: the package's config/segmentation.yaml).
    use_sim_time: Follow /clock, e.g. for ``ros2 bag play --clock``.
    rviz: Also start RViz (needs the rviz2 package, which the package does not depend on) with
        config/rviz/segmentation.rviz, its topics rewritten for ``camera`` (with ``cameras``: one overlay
        image and one grid display per camera), ``namespace`` and ``node_name``.
    namespace: Namespace for the node (its outputs become /<namespace>/<node_name>/...).
    node_name: Name of the node (default segmentation_node; the params file's ``/**/segmentation_node``
        key only matches that name).
    lifecycle: Start the managed node (lifecycle_segmentation_node) instead and drive it through
        configure and activate with launch's lifecycle events.
    weather_topic: Topic of std_msgs/String conditions, used when weather.mode is 'topic'.
    fastdds_profile: Fast DDS XML profile for the launched processes: ``auto`` (default) uses the
        package's config/fastdds_large_images.xml unless FASTRTPS_DEFAULT_PROFILES_FILE is already set,
        ``none`` leaves Fast DDS at its defaults, anything else is a path. The package profile enables
        shared memory and a 100 ms heartbeat: with the defaults, a lost fragment of a large image under
        reliable QoS stalls that topic for 3 s (docs/PERFORMANCE.md).
"""

import os
import tempfile

from ament_index_python.packages import get_package_share_directory
from launch.actions import (
    DeclareLaunchArgument,
    EmitEvent,
    OpaqueFunction,
    RegisterEventHandler,
    SetEnvironmentVariable,
)
from launch.events import matches_action
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import LifecycleNode, Node
from launch_ros.event_handlers import OnStateTransition
from launch_ros.events.lifecycle import ChangeState
from lifecycle_msgs.msg import Transition

from causal_tune_ros.node.launch_support import (
    camera_remappings,
    multi_camera_remappings,
    parse_cameras,
    rviz_config_text,
)
from launch import LaunchDescription

PACKAGE = "causal_tune_ros"


def _flag(context, name: str) -> bool:
    return LaunchConfiguration(name).perform(context).strip().lower() == "true"


def _node(context, *args, **kwargs) -> list:
    """The segmentation node; with ``lifecycle:=true`` the managed one plus configure/activate events."""
    camera = LaunchConfiguration("camera").perform(context)
    cameras = parse_cameras(LaunchConfiguration("cameras").perform(context))
    weather = LaunchConfiguration("weather_topic").perform(context)
    transport = LaunchConfiguration("transport").perform(context)
    if transport not in ("raw", "compressed"):
        raise RuntimeError(f"transport must be raw or compressed, got {transport!r}")
    overrides = {"input_transport": transport, "use_sim_time": _flag(context, "use_sim_time")}
    if cameras:  # only when set: an empty list cannot be typed in a params file
        overrides["cameras"] = list(cameras)
        remappings = multi_camera_remappings(
            cameras, LaunchConfiguration("camera_pattern").perform(context), weather
        )
    else:
        remappings = camera_remappings(camera, weather)
    common = dict(
        package=PACKAGE,
        name=LaunchConfiguration("node_name").perform(context),
        namespace=LaunchConfiguration("namespace").perform(context),
        output="screen",
        emulate_tty=True,
        parameters=[LaunchConfiguration("params_file"), overrides],
        remappings=remappings,
    )
    if not _flag(context, "lifecycle"):
        return [Node(executable="segmentation_node", **common)]
    node = LifecycleNode(executable="lifecycle_segmentation_node", **common)
    configure = EmitEvent(
        event=ChangeState(
            lifecycle_node_matcher=matches_action(node), transition_id=Transition.TRANSITION_CONFIGURE
        )
    )
    # Activate once configure has succeeded (configuring -> inactive), not after a later deactivate.
    activate = RegisterEventHandler(
        OnStateTransition(
            target_lifecycle_node=node,
            start_state="configuring",
            goal_state="inactive",
            entities=[
                EmitEvent(
                    event=ChangeState(
                        lifecycle_node_matcher=matches_action(node),
                        transition_id=Transition.TRANSITION_ACTIVATE,
                    )
                )
            ],
        )
    )
    return [node, activate, configure]


def _rviz(context, *args, **kwargs) -> list:
    """RViz with the package layout, its topics rewritten for this launch's camera, namespace and node."""
    if not _flag(context, "rviz"):
        return []
    share = get_package_share_directory(PACKAGE)
    with open(os.path.join(share, "config", "rviz", "segmentation.rviz"), encoding="utf-8") as f:
        text = rviz_config_text(
            f.read(),
            camera=LaunchConfiguration("camera").perform(context),
            namespace=LaunchConfiguration("namespace").perform(context),
            node_name=LaunchConfiguration("node_name").perform(context),
            cameras=parse_cameras(LaunchConfiguration("cameras").perform(context)),
            camera_pattern=LaunchConfiguration("camera_pattern").perform(context),
        )
    fd, path = tempfile.mkstemp(prefix="causal_tune_", suffix=".rviz")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    return [
        Node(
            package="rviz2",
            executable="rviz2",
            name="rviz2",
            arguments=["-d", path],
            parameters=[{"use_sim_time": _flag(context, "use_sim_time")}],
            output="log",
        )
    ]


FASTDDS_ENV = "FASTRTPS_DEFAULT_PROFILES_FILE"


def _fastdds_profile(context, *args, **kwargs) -> list:
    """Point Fast DDS at the large-image profile unless the user chose another (or none)."""
    choice = LaunchConfiguration("fastdds_profile").perform(context)
    if choice == "none" or (choice == "auto" and os.environ.get(FASTDDS_ENV)):
        return []
    share = get_package_share_directory(PACKAGE)
    path = os.path.join(share, "config", "fastdds_large_images.xml") if choice == "auto" else choice
    return [SetEnvironmentVariable(FASTDDS_ENV, path)]


def generate_launch_description() -> LaunchDescription:
    """The node, its arguments and (optionally) RViz."""
    share = get_package_share_directory(PACKAGE)
    true_false = ["true", "false"]
    return LaunchDescription(
        [
            DeclareLaunchArgument("camera", default_value="/camera/image_raw", description="raw image topic"),
            DeclareLaunchArgument(
                "cameras", default_value="", description="camera names for one multi-camera node (front,rear)"
            ),
            DeclareLaunchArgument(
                "camera_pattern",
                default_value="/{name}/image_raw",
                description="raw image topic of each camera of 'cameras' ({name} = its name)",
            ),
            DeclareLaunchArgument(
                "transport", default_value="raw", choices=["raw", "compressed"], description="image transport"
            ),
            DeclareLaunchArgument(
                "params_file",
                default_value=os.path.join(share, "config", "segmentation.yaml"),
                description="parameter YAML for the node",
            ),
            DeclareLaunchArgument(
                "use_sim_time", default_value="false", choices=true_false, description="use /clock"
            ),
            DeclareLaunchArgument(
                "rviz", default_value="false", choices=true_false, description="start RViz (needs rviz2)"
            ),
            DeclareLaunchArgument("namespace", default_value="", description="node namespace"),
            DeclareLaunchArgument("node_name", default_value="segmentation_node", description="node name"),
            DeclareLaunchArgument(
                "lifecycle",
                default_value="false",
                choices=true_false,
                description="start the managed node and drive it to active",
            ),
            DeclareLaunchArgument(
                "weather_topic", default_value="weather", description="weather condition topic"
            ),
            DeclareLaunchArgument(
                "fastdds_profile", default_value="auto", description="auto | none | path to a Fast DDS XML"
            ),
            OpaqueFunction(function=_fastdds_profile),
            OpaqueFunction(function=_node),
            OpaqueFunction(function=_rviz),
        ]
    )
