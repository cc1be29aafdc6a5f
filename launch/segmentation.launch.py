"""Launch the causal_tune_ros segmentation node (and optionally RViz) on a real ROS 2 install.

    ros2 launch causal_tune_ros segmentation.launch.py camera:=/front/image_raw
    ros2 launch causal_tune_ros segmentation.launch.py camera:=/front/image_raw transport:=compressed \
        params_file:=/path/to/my.yaml use_sim_time:=true rviz:=true namespace:=front

Arguments:
    camera: Raw image topic. The node subscribes to it (transport raw) or to ``<camera>/compressed``
        (transport compressed), and to ``camera_info`` beside it (``<camera dir>/camera_info``).
    transport: raw | compressed (sets the ``input_transport`` parameter).
    params_file: Parameter YAML (default: the package's config/segmentation.yaml).
    use_sim_time: Follow /clock, e.g. for ``ros2 bag play --clock``.
    rviz: Also start RViz with config/rviz/segmentation.rviz.
    namespace: Namespace for the node (its outputs become /<namespace>/segmentation_node/...).
    weather_topic: Topic of std_msgs/String conditions, used when weather.mode is 'topic'.
    fastdds_profile: Fast DDS XML profile for the launched processes: ``auto`` (default) uses the
        package's config/fastdds_large_images.xml unless FASTRTPS_DEFAULT_PROFILES_FILE is already set,
        ``none`` leaves Fast DDS at its defaults, anything else is a path. The package profile enables
        shared memory and a 100 ms heartbeat: with the defaults, a lost fragment of a large image under
        reliable QoS stalls that topic for 3 s (docs/PERFORMANCE.md).
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch.actions import DeclareLaunchArgument, OpaqueFunction, SetEnvironmentVariable
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from launch import LaunchDescription

PACKAGE = "causal_tune_ros"


def _camera_info_topic(camera: str) -> str:
    """``/front/image_raw`` -> ``/front/camera_info``; ``/image_raw`` -> ``/camera_info``."""
    head, _, _ = camera.rstrip("/").rpartition("/")
    return f"{head}/camera_info" if head or camera.startswith("/") else "camera_info"


def _node(context, *args, **kwargs):
    camera = LaunchConfiguration("camera").perform(context)
    transport = LaunchConfiguration("transport").perform(context)
    if transport not in ("raw", "compressed"):
        raise RuntimeError(f"transport must be raw or compressed, got {transport!r}")
    remappings = [
        ("image", camera),
        ("image/compressed", f"{camera.rstrip('/')}/compressed"),
        ("camera_info", _camera_info_topic(camera)),
        ("weather", LaunchConfiguration("weather_topic").perform(context)),
    ]
    return [
        Node(
            package=PACKAGE,
            executable="segmentation_node",
            name="segmentation_node",
            namespace=LaunchConfiguration("namespace"),
            output="screen",
            emulate_tty=True,
            parameters=[
                LaunchConfiguration("params_file"),
                {
                    "input_transport": transport,
                    "use_sim_time": LaunchConfiguration("use_sim_time").perform(context).lower() == "true",
                },
            ],
            remappings=remappings,
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
    return LaunchDescription(
        [
            DeclareLaunchArgument("camera", default_value="/camera/image_raw", description="raw image topic"),
            DeclareLaunchArgument(
                "transport", default_value="raw", choices=["raw", "compressed"], description="image transport"
            ),
            DeclareLaunchArgument(
                "params_file",
                default_value=os.path.join(share, "config", "segmentation.yaml"),
                description="parameter YAML for the node",
            ),
            DeclareLaunchArgument(
                "use_sim_time", default_value="false", choices=["true", "false"], description="use /clock"
            ),
            DeclareLaunchArgument(
                "rviz", default_value="false", choices=["true", "false"], description="start RViz"
            ),
            DeclareLaunchArgument("namespace", default_value="", description="node namespace"),
            DeclareLaunchArgument(
                "weather_topic", default_value="weather", description="weather condition topic"
            ),
            DeclareLaunchArgument(
                "fastdds_profile", default_value="auto", description="auto | none | path to a Fast DDS XML"
            ),
            OpaqueFunction(function=_fastdds_profile),
            OpaqueFunction(function=_node),
            Node(
                package="rviz2",
                executable="rviz2",
                name="rviz2",
                arguments=["-d", os.path.join(share, "config", "rviz", "segmentation.rviz")],
                parameters=[{"use_sim_time": LaunchConfiguration("use_sim_time")}],
                condition=IfCondition(LaunchConfiguration("rviz")),
                output="log",
            ),
        ]
    )
