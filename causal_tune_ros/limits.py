"""Resource limits shared by the node, the offline replay and the numpy stages (imports nothing of ours).

They bound the memory one frame can cost, whoever feeds the frame: a message header, a compressed
file or a parameter can only ask for as much as these allow. ``docs/RELIABILITY.md`` gives the
measured cost per frame at these limits.
"""

from __future__ import annotations

#: Default largest ``width * height`` of an input image, for the node's ``max_image_pixels`` parameter
#: and for ``causal-tune replay``: 4096 x 4096 (16.8 MP), room for a 4K (8.3 MP) or 12 MP camera. The
#: size in the message header (raw) or the JPEG/PNG header (compressed) is checked before anything is
#: decoded or allocated.
DEFAULT_MAX_IMAGE_PIXELS = 4096 * 4096

#: Largest occupancy grid (rows x cols) the drivable-grid projection accepts: one million cells, e.g.
#: 100 m x 100 m at 0.1 m or 50 m x 50 m at 0.05 m (a camera's ground projection means little farther
#: out). The projection keeps about 20 bytes per cell and each frame's vote count needs about as much
#: again, so this bounds both; ``drivable.grid.*`` values asking for more are refused when they are set.
MAX_GRID_CELLS = 1_000_000

#: Working memory of one chunk of the exact bilinear upsampler (``pipeline.upsample_argmax``): its
#: per-pixel class interpolation runs over blocks of output pixels whose K-class temporaries stay
#: within this many bytes, whatever the image size or the number of class boundaries.
UPSAMPLE_CHUNK_BYTES = 16 * 1024 * 1024
