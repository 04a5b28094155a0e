"""Errors the stage CLIs turn into one-line messages (exit status 2) before any heavy work."""


class KdnasError(ValueError):
    """A user-facing problem with params, data or models; its message is one line."""
