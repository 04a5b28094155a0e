"""Errors the stage CLIs turn into one-line messages (exit status 2) before any heavy work."""


class KdnasError(ValueError):
    """A user-facing problem with params, data or models; its message is one line."""


class StopRequested(KdnasError):
    """SIGTERM arrived; a checkpoint was saved at the step boundary that followed."""

    exit_code = 143  # 128 + SIGTERM, what a shell reports for a terminated job
