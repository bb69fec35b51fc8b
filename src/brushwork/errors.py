"""Exceptions that mean "the user asked for something that cannot work", and exit statuses.

The CLIs turn every :class:`BrushworkError` into one line on stderr and exit
status :data:`EXIT_USAGE`; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

#: Exit status of a command-line user error (bad option, bad input file).
EXIT_USAGE = 2
#: Exit status after Ctrl-C (128 + SIGINT), as shells report it.
EXIT_INTERRUPTED = 130


class BrushworkError(Exception):
    """A user-facing error: bad input, bad option, missing weights."""


class ImageError(BrushworkError):
    """An input image is missing, unreadable, too large or otherwise unusable."""


class ConfigError(BrushworkError):
    """An option value or combination of options cannot work."""


class WeightsError(BrushworkError):
    """Pretrained weights are missing, corrupt or do not match their fingerprint."""


class OutOfMemoryError(ConfigError):
    """A run's estimated peak memory is more than the machine has."""
