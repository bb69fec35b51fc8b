"""Exceptions that mean "the user asked for something that cannot work".

The CLI turns every :class:`BrushworkError` into one line on stderr and exit
status 2; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class BrushworkError(Exception):
    """A user-facing error: bad input, bad option, missing weights."""


class ImageError(BrushworkError):
    """An input image is missing, unreadable, too large or otherwise unusable."""


class ConfigError(BrushworkError):
    """An option value or combination of options cannot work."""


class WeightsError(BrushworkError):
    """Pretrained weights are missing, corrupt or do not match their fingerprint."""
