"""The package's own exception types, so callers can catch one family and report it clearly."""


class CausalTuneError(Exception):
    """Base class of every error this package raises on purpose."""


class ConfigError(CausalTuneError, ValueError):
    """A configuration file or value is missing, malformed or out of range."""


class CheckpointError(CausalTuneError):
    """A weights or checkpoint file is missing, corrupt, or does not match the model it is loaded into."""


class ImageConversionError(CausalTuneError, ValueError):
    """A ROS image message cannot be turned into an array (bad encoding, size, step or data)."""


class BackendError(CausalTuneError):
    """An inference backend cannot be built, loaded or run (missing library, stale artefact, ...)."""


class DatasetError(CausalTuneError):
    """A data set folder is missing, incomplete, or holds a file that cannot be read."""


class BagError(CausalTuneError):
    """A rosbag2 cannot be opened, read or written."""


class MetricError(CausalTuneError, ValueError):
    """Predictions and labels that cannot be scored (shape mismatch, class ids out of range, ...)."""


class FleetError(CausalTuneError):
    """A fleet run cannot start or go on (missing ``fleet`` extra, no Ray cluster, unusable output folder)."""
