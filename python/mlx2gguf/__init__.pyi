from os import PathLike
from typing import Any, Callable, Literal, NoReturn, Optional, Sequence, Union

_Path = Union[str, PathLike[str]]

class Error(Exception):
    """Any mlx2gguf failure; ``str(e)`` is the command line's one-line message."""

    kind: str
    message: str
    def __init__(self, message: str) -> None: ...

class UsageError(Error, ValueError):
    kind: Literal["usage"]

class InputError(Error, ValueError):
    kind: Literal["input"]

class IoError(Error, OSError):
    kind: Literal["io"]

class InternalError(Error):
    kind: Literal["internal"]

def convert(
    model: _Path,
    output: Optional[_Path] = None,
    *,
    adapter: Optional[_Path] = None,
    outtype: str = "auto",
    threads: Optional[int] = None,
    dry_run: bool = False,
    progress: Optional[Callable[[int, int], object]] = None,
    adapter_out: Optional[_Path] = None,
    tensor_type: Sequence[str] = (),
    pure: bool = False,
    split_max_size: Union[int, str, None] = None,
    split_max_tensors: Optional[int] = None,
    nan_policy: Literal["error", "zero", "keep"] = "error",
    tokenizer_pre: Optional[str] = None,
    imatrix: Optional[_Path] = None,
    include_weights: Sequence[str] = (),
    exclude_weights: Sequence[str] = (),
    metadata: Optional[_Path] = None,
) -> dict[str, Any]:
    """Converts an MLX model folder (or a Hugging Face repo id already in the local cache)
    into a GGUF file, as ``mlx2gguf convert``; each keyword is the command-line option of
    the same name (``output`` is ``-o``, named as llama.cpp's converter names files when
    omitted; ``tensor_type`` entries are ``"REGEX=TYPE"``; ``metadata`` is ``--metadata``).

    Returns the summary ``convert --json`` prints, or with ``dry_run`` the plan
    ``convert --dry-run --json`` prints (nothing is written). ``progress(done, total)``
    is called on the calling thread with tensor-data bytes written; an exception it
    raises cancels the conversion and propagates. Ctrl-C cancels it too (nothing is left
    under the output names) and raises KeyboardInterrupt.
    """

def inspect(path: _Path) -> dict[str, Any]:
    """An MLX folder's, cached repo id's or GGUF file's description, as ``inspect --json``."""

def verify(path: _Path) -> dict[str, Any]:
    """Checks a GGUF against what llama.cpp enforces: ``{"path", "ok", "problems"}``,
    each problem ``{"rule", "message", "warning"}``; ``ok`` when only warnings remain."""

def main() -> NoReturn:
    """The ``mlx2gguf`` command line on ``sys.argv``; exits with its code."""
