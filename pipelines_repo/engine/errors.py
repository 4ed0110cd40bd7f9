"""The engine's error base: every engine (and orchestration) failure is a :class:`PipelineError`.

A :class:`PipelineError` carries ``cause`` (what went wrong), ``path`` (the file it concerns, when
there is one) and ``fix`` (what to do about it); its message is ``"<path>: <cause> <fix>"``
(parts omitted when absent). Errors whose message already names the fix pass it all as
``cause``. Subclasses keep a built-in base as a second base where callers catch it (for example
``except ValueError`` around row validation, ``FileNotFoundError`` for a missing stage input)::

    PipelineError
    ├── PipelineLoadError                      engine.loader       (a pipeline file, a --name)
    ├── PipelineOptionsError (TypeError, ValueError)  engine.spec  (DatasetPipeline options)
    ├── DeclarationError (ValueError)          engine.declarations (DatasetFile arguments)
    ├── SourceProjectNotFoundError (LookupError)      engine.pull
    ├── TargetError (ValueError)               engine.push
    ├── PushInputError (ValueError)            engine.push
    ├── TransformRowError (ValueError)         engine.rows
    ├── RowValidationError (ValueError)        engine.rows
    │   └── DuplicateRowIdError                engine.rows
    ├── TransformError (RuntimeError)          engine.transform
    ├── FatalTransformError (RuntimeError)     engine.errors: not subject to the error policy
    │   └── NodeRunnerCrashedError             engine.node_runner
    ├── NodeUnavailableError (RuntimeError)    engine.node_env
    ├── SourceSpanNotFoundError (LookupError)  engine.transform
    ├── TraceUnavailableError (RuntimeError)   engine.trace
    ├── JsonlError (ValueError)                engine.jsonl
    ├── ArtifactNotFoundError (FileNotFoundError)  engine.artifacts
    ├── MissingStageOutputError (FileNotFoundError)  orchestration.staging
    ├── PipelineCompileError (ValueError)      orchestration.compiler
    └── PipelineDefinitionsError (RuntimeError)  orchestration.compiler

:meth:`PipelineError.describe` is the one-line text the CLI prints after ``error:``.
API failures are ``client.errors.BraintrustError`` (the client room), not pipeline errors.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["FatalTransformError", "PipelineError"]


class PipelineError(Exception):
    """A pipeline failure naming its ``cause``, and the ``path`` and ``fix`` when known."""

    def __init__(
        self,
        cause: str,
        *,
        path: str | os.PathLike[str] | None = None,
        fix: str | None = None,
        message: str | None = None,
    ):
        """``message`` replaces the composed ``"<path>: <cause> <fix>"`` (for subclasses that keep
        bt's wording)."""
        self.path = Path(path) if path is not None else None
        self.cause = cause
        self.fix = fix
        if message is None:
            where = f"{os.fspath(path)}: " if path is not None else ""
            message = f"{where}{cause}" + (f" {fix}" if fix else "")
        super().__init__(message)

    def describe(self) -> str:
        """One line for a user (the CLI prints ``error: <this>``)."""
        return str(self)


class FatalTransformError(PipelineError, RuntimeError):
    """A failure of the transform's machinery, not of one item (e.g. the Node process died):
    :class:`engine.transform.TransformStream` raises it under either error policy."""
