"""The ROS 2 side of the package (the only code that imports rclpy).

Modules:

- ``segmentation_node``: the ``segmentation_node`` executable (plain node, always active).
- ``lifecycle_node``: ``lifecycle_segmentation_node``, the managed variant.
- ``command``: ``causal-tune node``.
- ``core``: what both nodes do (subscriptions, worker, publishing);
  ``parameter_updates``: run-time parameter changes (validate, then apply);
  ``model_loading``: parameters -> backend spec, log bridge.
- ``parameters/``: the parameter table (``table``), the typed settings (``settings``), the rclpy
  declarations (``declare``) and the generated YAML and docs (``docs``).
- ``processing``: the data path in the worker (one frame, or one batch of cameras in one forward).
- ``worker``: the latest-frame-only hand-off; ``batching``: one latest-frame slot per camera and the
  bounded wait that makes a batch (multi-camera node).
- ``outputs``: publishers and output messages; ``diagnostics``: statistics and ``/diagnostics``.
- ``weather_state``: the condition in force per ``weather.mode``; ``ground``: camera pose (params / TF).
- ``launch_support``: plain-Python helpers of ``launch/segmentation.launch.py`` (remappings, RViz topics).

Importing this package imports nothing; ``parameters``, ``worker``, ``batching`` and ``launch_support``
work without rclpy. The same code runs on ROS 2 Humble and Jazzy (Jazzy-only rclpy API is feature-detected).
"""
