"""Fleet archives: segment and index many bags on a Ray cluster (``causal-tune fleet``).

- :mod:`~causal_tune_ros.fleet.inputs`: find the bags and name their outputs.
- :mod:`~causal_tune_ros.fleet.worker`: :class:`BagProcessor`, one loaded model replaying bag after bag.
- :mod:`~causal_tune_ros.fleet.cluster`: Ray start / join, the worker actors.
- :mod:`~causal_tune_ros.fleet.runner`: :func:`run_fleet`, the driver (schedule, retry, commit, index).
- :mod:`~causal_tune_ros.fleet.state`: the output folder, resume and atomic commit.
- :mod:`~causal_tune_ros.fleet.index`: the Parquet frame index.
- :mod:`~causal_tune_ros.fleet.progress`, :mod:`~causal_tune_ros.fleet.summary`: reporting.
- :mod:`~causal_tune_ros.fleet.command`, :mod:`~causal_tune_ros.fleet.query_command`: the commands.

Ray, pyarrow and pandas come with the ``fleet`` extra and are imported only when used; importing this
package pulls in none of them, nor torch nor rclpy.
"""
