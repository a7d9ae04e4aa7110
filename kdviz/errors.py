"""kdviz's exceptions: one root, user-facing subclasses.

A ``KdvizError`` is *advice*: the user gave something kdviz cannot use (a file, an option, a model) and the
message says what and how to fix it. The dashboard shows these as advice; any other exception is a bug and is
shown as an error with its traceback. The subclasses also derive from the built-in exception a caller would
expect (``ValueError`` for bad input), so ``except ValueError`` keeps working.
"""

from __future__ import annotations

__all__ = [
    "CheckpointError",
    "InvalidInputError",
    "KdvizError",
    "MissingDataError",
    "UnknownNameError",
    "UnsupportedModelError",
]


class KdvizError(Exception):
    """Root of kdviz's own errors: a message meant for the user."""


class InvalidInputError(KdvizError, ValueError):
    """An input, option or file that kdviz cannot use (wrong shape, out-of-range value, unreadable file)."""


class UnknownNameError(InvalidInputError):
    """A name that is not registered (method, modality, architecture, part kind); the message lists the valid ones."""


class UnsupportedModelError(KdvizError, ValueError):
    """A model kdviz cannot handle this way.

    For example an architecture without a random-weights null, or a method that does not apply to it.
    """


class CheckpointError(InvalidInputError):
    """A checkpoint that cannot be loaded safely or does not match the architecture it claims."""


class MissingDataError(KdvizError, FileNotFoundError):
    """Data or a file kdviz needs is not on this machine (a dataset package, a zoo's checkpoint)."""
