"""The exceptions mlx2gguf raises. Each carries the one-line message the command line
prints (``str(e)``) and a ``kind`` that says which of its exit codes it would be."""


class Error(Exception):
    """Any mlx2gguf failure. ``kind`` is "usage", "input", "io" or "internal"."""

    kind = "internal"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class UsageError(Error, ValueError):
    """A bad argument: an unknown output type, conflicting options (exit code 2)."""

    kind = "usage"


class InputError(Error, ValueError):
    """A model, adapter or GGUF that cannot be converted or read as given (exit code 3)."""

    kind = "input"


class IoError(Error, OSError):
    """Reading or writing a file failed, e.g. the disk is full (exit code 4)."""

    kind = "io"


class InternalError(Error):
    """A bug in mlx2gguf; please report it."""

    kind = "internal"
