"""``causal-tune demo``: the whole product on a fresh machine, with nothing downloaded.

1. renders a short synthetic drive (clear, then snow and night, then fog and rain) with exact labels and
   writes it as a rosbag2 (``demo_drive.mcap``);
2. replays it offline through the shipped demo model (``models/demo/``), with the band preset of each
   frame's condition (the demo model's calibrated presets, ``config/weather_bands_demo.yaml``), into
   ``demo_segmented.mcap`` and a side-by-side MP4;
3. writes a montage PNG (one row per condition: input | overlay | ground truth, and a class-colour legend);
4. prints mIoU per condition against the ground truth with the band preset per condition, with the
   training band everywhere, with the separately trained Rein-style model (the same tokens without the
   frequency domain, trained on the same data: the real ablation), and with this model's band-pass
   switched off (a probe of the same weights, not an ablation), and how many frames of each condition
   ``causal-tune replay --weather auto`` applies the right condition to (the replay's own weather
   stage, hysteresis included, on the same bag).

The demo model is a *small random-init ViT* trained on clear synthetic scenes only (not DINOv2; see
``models/demo/README.md``), so snow, night, fog and rain are unseen domains, as in the paper.

With ``--ros`` (needs rclpy) it instead starts the real segmentation node and plays the drive to it on
live topics, for ``ros2 topic echo`` / RViz.

One job per module: :mod:`.layout` (output names, columns, the default drive), :mod:`.report` (scores,
table, montage), :mod:`.run` (the offline demo), :mod:`.packaging` (``--package-model``), :mod:`.ros`
(``--ros``), :mod:`.command` (the CLI).
"""
