"""``sensor_msgs/Image`` and ``sensor_msgs/CompressedImage`` <-> numpy, with no ROS import.

Messages are duck-typed: anything with the ``sensor_msgs/Image`` fields (``height``, ``width``,
``encoding``, ``is_bigendian``, ``step``, ``data``) works, so the same code serves rclpy messages in the
node (``data`` is an ``array.array('B')``) and ``rosbags`` messages in the offline replay (``data`` is a
``numpy.uint8`` array). ``bytes``, ``bytearray`` and ``memoryview`` data work too.

Supported raw encodings (``image_to_array`` / ``image_to_rgb``):

============================  ==========  =====================================================
encoding                      bytes/px    to RGB
============================  ==========  =====================================================
``rgb8``                      3           zero-copy view of the message buffer
``bgr8``                      3           one OpenCV channel swap
``rgba8`` / ``bgra8``         4           alpha dropped
``rgb16`` / ``bgr16``         6           top byte kept (``value >> 8``), then as the 8-bit
                                          encoding; ``is_bigendian`` honoured
``rgba16`` / ``bgra16``       8           likewise, alpha dropped
``mono8`` / ``8UC1``          1           grey replicated to 3 channels
``mono16``                    2           top byte kept (``value >> 8``), then as ``mono8``;
                                          ``is_bigendian`` honoured
``bayer_rggb8`` ...           1           OpenCV bilinear demosaicing (see ``_BAYER_TO_RGB``)
``bayer_{bggr,gbrg,grbg}8``
``bayer_rggb16`` ...          2           OpenCV bilinear demosaicing at 16 bits, then the top
``bayer_{bggr,gbrg,grbg}16``              byte; ``is_bigendian`` honoured
``uyvy`` / ``yuv422``         2           OpenCV YUV 4:2:2, video-range BT.601 (even width)
``yuyv`` / ``yuv422_yuy2``    2           OpenCV YUV 4:2:2, video-range BT.601 (even width)
``nv12`` / ``nv21``           1.5         OpenCV YUV 4:2:0 semi-planar, video-range BT.601: a
                                          Y plane of ``height`` rows, then ``height / 2`` rows of
                                          interleaved UV (nv12) or VU (nv21), both ``step``
                                          bytes apart (even width and height)
``8UC3``, ``16UC1``,          3, 2, 4     ``image_to_array`` only (not camera images: masks,
``32FC1``                                 depth, confidence); ``image_to_rgb`` refuses them
============================  ==========  =====================================================

16-bit encodings keep the 8 most significant bits: a full-range 16-bit camera maps linearly onto 0..255;
a 12-bit camera stored in the low bits comes out dark (scale it yourself via ``image_to_array`` if so).
``nv24`` (4:4:4 semi-planar) has no OpenCV conversion and is refused as unsupported.

Rows may be padded (``step > width * bytes_per_pixel``): arrays are strided views of the message
buffer, never re-packed unless a conversion needs a copy anyway. Data longer than the layout needs is
accepted (the extra bytes are ignored) with one warning per layout on the ``causal_tune_ros.imaging``
logger. Every bad input raises :class:`~causal_tune_ros.errors.ImageConversionError` with the reason,
and sizes are checked before anything is allocated. JPEG is decoded by libjpeg-turbo through
``simplejpeg`` with its corrupt-data warnings treated as errors, so a damaged frame is refused rather
than returned half grey.
"""

from causal_tune_ros.imaging.build import numpy_to_image
from causal_tune_ros.imaging.compressed import compressed_to_rgb
from causal_tune_ros.imaging.messages import DEFAULT_MAX_PIXELS
from causal_tune_ros.imaging.raw import ARRAY_ENCODINGS, SUPPORTED_ENCODINGS, image_to_array, image_to_rgb

__all__ = [
    "ARRAY_ENCODINGS",
    "DEFAULT_MAX_PIXELS",
    "SUPPORTED_ENCODINGS",
    "compressed_to_rgb",
    "image_to_array",
    "image_to_rgb",
    "numpy_to_image",
]
