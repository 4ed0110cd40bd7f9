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
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

from .errors import PipelineError

__all__ = ["DeclarationError", "FileHook", "collecting", "declaring_file", "file_hooks", "register", "register_file_hook"]

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


# Declarations that register through another library's own registry (the braintrust SDK's lazy
# `Eval(...)` registry) come in through file hooks, so the loader needs no import of the rooms above
# the engine that read them. A hook wraps the execution of one file: entering it prepares the
# registry, the callable it yields turns what the file registered into declarations (given the
# file's path, its module globals and its text) once the file has run.
FileHook = Callable[[], "AbstractContextManager[Callable[[Path, dict[str, Any], str], list[Any]]]"]
_FILE_HOOKS: list[FileHook] = []


def register_file_hook(hook: FileHook) -> None:
    """Add a hook around every pipeline file's execution (idempotent)."""
    if hook not in _FILE_HOOKS:
        _FILE_HOOKS.append(hook)


def file_hooks() -> list[FileHook]:
    return list(_FILE_HOOKS)
