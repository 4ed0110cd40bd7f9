"""Declarations other than pipelines (e.g. ``DatasetFile``) made by files in the pipelines folder.

    register(declaration)            # called by a declaration function at the file's module level
    with collecting() as found: ...  # the loader: what the file registered, in order
    declaring_file(depth)            # the file that called the declaration function

The loader runs one file at a time under its lock; :func:`collecting` gives each load a fresh list
and restores the previous one after, so a declaration never leaks from one file's load into
another's (like the SDK's pipeline registry, which the loader snapshots the same way). A call
outside any load (a plain ``import``) is kept in a process-wide list nobody reads.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .errors import PipelineError

__all__ = ["DeclarationError", "collecting", "declaring_file", "register"]

_LOCAL = threading.local()
_OUTSIDE: list[Any] = []


class DeclarationError(PipelineError, ValueError):
    """A declaration's arguments are invalid (the loader reports it with the file and line)."""


def _current() -> list[Any]:
    return getattr(_LOCAL, "found", None) if getattr(_LOCAL, "found", None) is not None else _OUTSIDE


def register(declaration: Any) -> None:
    _current().append(declaration)


@contextmanager
def collecting() -> Iterator[list[Any]]:
    previous = getattr(_LOCAL, "found", None)
    found: list[Any] = []
    _LOCAL.found = found
    try:
        yield found
    finally:
        _LOCAL.found = previous


def declaring_file(depth: int = 2) -> Path | None:
    """``__file__`` of the module ``depth`` frames up (1 = the caller), absolute; None if unknown
    (e.g. a REPL): relative paths in a declaration resolve against the declaring file."""
    try:
        frame = sys._getframe(depth)  # noqa: SLF001 - the only way to know the calling module
    except ValueError:
        return None
    name = frame.f_globals.get("__file__")
    return Path(os.path.abspath(name)) if isinstance(name, str) else None
