"""The model registry's errors, each a sentence for the user."""

from pipeline.errors import PlumbError


class BadVersionFolder(PlumbError):
    """A folder is not a trained version this Plumbline can register (no plumb_model.json, another schema...)."""


class UnknownVersion(PlumbError):
    """A version name that the registry does not hold."""


class LiveConflict(PlumbError):
    """The live version changed between reading and writing it, or the change asked for is not possible."""
