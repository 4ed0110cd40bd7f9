"""Import pipeline files written for Braintrust's CLI, unchanged, and select pipelines in them.

Like bt's Python runner: the file's directory and the current directory go on ``sys.path`` (and
stay there, so a transform's lazy imports keep working), the file runs as a module with a unique
name (``_bt_dagster_pipeline_<sha256(abs path)[:16]>``), and the pipelines are what the file
appended to ``braintrust.dataset_pipeline._DATASET_PIPELINES`` (deduplicated by identity).
Unlike bt, the SDK registry is snapshotted and restored around every load, so loading one file
never leaks its pipelines into the next load, and the file's text is compiled from the bytes we
hash (no stale ``__pycache__``).

Other declarations the file makes (``DatasetFile(...)``, registered through
``engine.declarations``) are collected the same way: :func:`load_declarations` /
:func:`discover_declarations` return them next to the pipelines, and a file may hold only those.
Names are unique across pipelines and declarations (both become Dagster key prefixes).

TypeScript/JavaScript files (``.ts .tsx .js .jsx``) load through ``engine.node_loader`` (a Node
runner; same specs, validation and broken-file policy).

Every failure is a :class:`PipelineLoadError` naming the file, the cause and the fix.
"""

from __future__ import annotations

import contextlib

import hashlib
import importlib.machinery
import importlib.util
import os
import sys
import threading
import traceback
from collections.abc import Iterable
from pathlib import Path
from dataclasses import dataclass, field
from typing import Any

from . import declarations as decl
from .errors import PipelineError
from .node_env import NODE_SUFFIXES
from .spec import PipelineOptions, PipelineOptionsError, PipelineSpec, options_for, spec_from_definition

__all__ = [
    "Discovered",
    "LoadedFile",
    "PipelineLoadError",
    "discover_declarations",
    "discover_pipelines",
    "load_declarations",
    "load_pipeline_file",
    "select_pipeline",
]

_LOAD_LOCK = threading.RLock()
PIPELINE_SUFFIXES = (".py", *NODE_SUFFIXES)


class PipelineLoadError(PipelineError):
    """A pipeline file could not be loaded or a pipeline could not be selected.

    ``str(err)`` is ``"<path>: <cause>"`` followed by ``" <fix>"`` when there is one.
    """


def module_name_for(path: str | os.PathLike[str]) -> str:
    absolute = os.path.abspath(os.fspath(path))
    return f"_bt_dagster_pipeline_{hashlib.sha256(absolute.encode('utf-8')).hexdigest()[:16]}"


def _registry() -> list[Any]:
    from braintrust import dataset_pipeline as sdk

    return sdk._DATASET_PIPELINES  # noqa: SLF001 - the SDK's documented-by-use registry


def _user_frame(exc: BaseException, filename: str) -> str:
    """``line N`` of the deepest traceback frame inside the pipeline file, if any."""
    line = None
    for frame in traceback.extract_tb(exc.__traceback__):
        if os.path.abspath(frame.filename) == filename:
            line = frame.lineno
    return f" (line {line})" if line else ""


def _check_path(path: Path) -> None:
    if not path.exists():
        raise PipelineLoadError(
            "pipeline file not found.",
            path=path,
            fix=f"Check the path (relative paths resolve from {os.getcwd()}).",
        )
    if path.is_dir():
        raise PipelineLoadError(
            "is a directory, not a pipeline file.", path=path, fix="Pass a .py file that calls DatasetPipeline(...)."
        )
    if path.suffix.lower() not in PIPELINE_SUFFIXES:
        raise PipelineLoadError(
            f"unsupported pipeline file extension {path.suffix or '(none)'!r}; bt-dagster runs "
            f"{', '.join(PIPELINE_SUFFIXES)} pipeline files (like bt, not .mjs/.cjs).",
            path=path,
            fix="Pass a .py, .ts, .tsx, .js or .jsx file that calls DatasetPipeline(...).",
        )


def _exec_file(path: Path, absolute: str, text: str) -> None:
    module_name = module_name_for(absolute)
    try:
        code = compile(text, absolute, "exec", dont_inherit=True)
    except SyntaxError as exc:
        raise PipelineLoadError(
            f"syntax error at line {exc.lineno}: {exc.msg}.",
            path=path,
            fix="Fix the Python syntax in the file.",
        ) from None
    loader = importlib.machinery.SourceFileLoader(module_name, absolute)  # any suffix (e.g. .PY)
    spec = importlib.util.spec_from_file_location(module_name, absolute, loader=loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    module.__file__ = absolute
    previous = sys.modules.get(module_name)
    sys.modules[module_name] = module
    ok = False
    try:
        exec(code, module.__dict__)  # noqa: S102 - running the user's pipeline file is the point
        ok = True
    except PipelineOptionsError as exc:
        line = _user_frame(exc, absolute).strip(" ()")
        cause = f"{line + ': ' if line else ''}{exc}"
        raise PipelineLoadError(cause, path=path, fix="Use only the listed options.") from None
    except decl.DeclarationError as exc:
        line = _user_frame(exc, absolute).strip(" ()")
        cause = f"{line + ': ' if line else ''}{exc.cause}."
        raise PipelineLoadError(cause, path=path, fix=f"Fix the declaration: {exc.fix}." if exc.fix else None) from None
    except SyntaxError as exc:  # from a module the file imports
        where = f"{exc.filename}, " if exc.filename else ""
        raise PipelineLoadError(
            f"syntax error in an imported module ({where}line {exc.lineno}): {exc.msg}.",
            path=path,
            fix="Fix the Python syntax in that module.",
        ) from None
    except ImportError as exc:
        missing = getattr(exc, "name", None)
        fix = (
            f"Install the package that provides {missing!r} into the environment running bt-dagster "
            f"({sys.executable} -m pip install ...), or fix the import."
            if missing
            else "Fix the import (check the module and name exist)."
        )
        raise PipelineLoadError(f"import failed{_user_frame(exc, absolute)}: {exc}.", path=path, fix=fix) from None
    except (Exception, SystemExit) as exc:  # noqa: BLE001 - any user error becomes a load error
        raise PipelineLoadError(
            f"raised {type(exc).__name__} while being imported{_user_frame(exc, absolute)}: {exc}.",
            path=path,
            fix="Fix the error in the pipeline file; module-level code must run without network access or input.",
        ) from exc
    finally:
        if not ok:
            if previous is not None:
                sys.modules[module_name] = previous
            else:
                sys.modules.pop(module_name, None)


@dataclass
class LoadedFile:
    """What one file declared: pipelines and other declarations (e.g. ``DatasetFileSpec``)."""

    pipelines: list[PipelineSpec] = field(default_factory=list)
    declarations: list[Any] = field(default_factory=list)


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise PipelineLoadError(
            f"is not UTF-8 text ({exc.reason}).", path=path, fix="Save the file as UTF-8."
        ) from None
    except OSError as exc:
        raise PipelineLoadError(
            f"cannot be read: {exc.strerror or exc}.", path=path, fix="Check the file's permissions."
        ) from None


def _run_file(path: Path, absolute: str, text: str) -> tuple[list[Any], list[PipelineOptions], list[Any]]:
    """Execute the file with both registries isolated: (SDK definitions, their options, declarations)."""
    with _LOAD_LOCK:
        for entry in (os.path.dirname(absolute), os.getcwd()):
            if entry and entry not in sys.path:
                sys.path.insert(0, entry)
        registry = _registry()
        saved = list(registry)
        registry.clear()
        try:
            with decl.collecting() as declared, contextlib.ExitStack() as hooks:
                # e.g. the evals room's hook: `Eval(...)` registers lazily, never runs at load
                finishers = [hooks.enter_context(hook()) for hook in decl.file_hooks()]
                _exec_file(path, absolute, text)
            declared.extend(_hooked_declarations(path, absolute, text, finishers))
            definitions: list[Any] = []
            seen: set[int] = set()
            for definition in registry:
                if id(definition) not in seen:
                    seen.add(id(definition))
                    definitions.append(definition)
            # Read the side-table options while the definitions are certainly alive.
            options = [options_for(definition) for definition in definitions]
        finally:
            registry[:] = saved
    return definitions, options, list(declared)


def _hooked_declarations(path: Path, absolute: str, text: str, finishers: list[Any]) -> list[Any]:
    """What the file hooks collected (see ``engine.declarations.register_file_hook``)."""
    if not finishers:
        return []
    module = sys.modules.get(module_name_for(absolute))
    found: list[Any] = []
    try:
        for finish in finishers:
            found.extend(finish(Path(absolute), vars(module) if module else {}, text))
    except decl.DeclarationError as exc:
        raise PipelineLoadError(f"{exc.cause}.", path=path, fix=f"{exc.fix}." if exc.fix else None) from None
    return found


def load_declarations(path: str | os.PathLike[str]) -> LoadedFile:
    """Import one file: its pipelines and its other declarations, in registration order.

    Raises :class:`PipelineLoadError` like :func:`load_pipeline_file`, except that a file holding
    only declarations (no pipeline) is fine; an invalid declaration is an error too.
    """
    path = Path(path)
    _check_path(path)
    if path.suffix.lower() in NODE_SUFFIXES:
        from .node_loader import load_node_file  # imports this module: loaded on first use

        return load_node_file(path)
    absolute = os.path.abspath(path)
    text = _read_text(path)
    definitions, options, declared = _run_file(path, absolute, text)
    if not definitions and not declared:
        raise PipelineLoadError(
            "no dataset pipeline registered.",
            path=path,
            fix="Call DatasetPipeline(name=..., source=..., transform=..., target=...) at module level "
            "(from braintrust import DatasetPipeline), or DatasetFile(...) (from pipelines_repo import DatasetFile).",
        )

    specs: list[PipelineSpec] = []
    for index, (definition, opts) in enumerate(zip(definitions, options)):
        label = getattr(definition, "name", None) or path.stem
        try:
            spec = spec_from_definition(
                definition, file=Path(absolute), file_text=text, default_name=path.stem, options=opts
            )
        except ValueError as exc:
            raise PipelineLoadError(
                f"pipeline {label!r} (#{index + 1}) is invalid: {exc}.",
                path=path,
                fix="Fix the DatasetPipeline(...) arguments: source={'project_name': ..., 'scope': 'span'|'trace'}, "
                "target={'dataset_name': ...}.",
            ) from None
        specs.append(spec)

    names = [spec.name for spec in specs] + [getattr(d, "name", "") for d in declared]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise PipelineLoadError(
            f"several pipelines or dataset files are named {', '.join(repr(name) for name in duplicates)} "
            "(an unnamed pipeline takes the file stem).",
            path=path,
            fix="Give each DatasetPipeline(...) and DatasetFile(...) a distinct name=.",
        )
    return LoadedFile(pipelines=specs, declarations=declared)


def load_pipeline_file(path: str | os.PathLike[str]) -> list[PipelineSpec]:
    """Import one pipeline file and return its pipelines, in registration order.

    Names default like bt: ``name`` else the file stem. Raises :class:`PipelineLoadError` for a
    missing or non-``.py`` file, a syntax error (with its line), an import error, an exception at
    import time, no pipeline registered, two pipelines with one name, or an invalid
    source/target (e.g. missing ``target.dataset_name``, bad ``source.scope``).
    """
    loaded = load_declarations(path)
    if not loaded.pipelines:
        raise PipelineLoadError(
            "no dataset pipeline registered.",
            path=Path(path),
            fix="Call DatasetPipeline(name=..., source=..., transform=..., target=...) at module level "
            "(from braintrust import DatasetPipeline).",
        )
    return loaded.pipelines


def select_pipeline(
    specs: Iterable[PipelineSpec], name: str | None, path: str | os.PathLike[str] | None = None
) -> PipelineSpec:
    """Pick one pipeline like bt's runner (``--name``)."""
    specs = list(specs)
    if name:
        for spec in specs:
            if spec.name == name:
                return spec
        known = ", ".join(spec.name for spec in specs) or "none"
        raise PipelineLoadError(f'No dataset pipeline named "{name}" found. Known pipelines: {known}.', path=path)
    if not specs:
        raise PipelineLoadError("No dataset pipelines found. Did you call DatasetPipeline()?", path=path)
    if len(specs) > 1:
        names = ", ".join(spec.name for spec in specs)
        raise PipelineLoadError(f"Multiple dataset pipelines found ({names}). Pass --name.", path=path)
    return specs[0]


def _is_pipeline_file(path: Path) -> bool:
    """``*.py`` and ``*.ts|tsx|js|jsx`` (not ``*.d.ts``), not ``_``-prefixed (helpers)."""
    name = path.name
    return (
        path.suffix in PIPELINE_SUFFIXES
        and not name.startswith("_")
        and not name.endswith(".d.ts")
        and path.is_file()
    )


@dataclass
class Discovered:
    pipelines: list[PipelineSpec] = field(default_factory=list)
    declarations: list[Any] = field(default_factory=list)
    errors: list[PipelineLoadError] = field(default_factory=list)


def discover_declarations(directory: str | os.PathLike[str]) -> Discovered:
    """Load every pipeline file (:func:`_is_pipeline_file`) in ``directory``, sorted by file name.

    Errors are collected per file instead of raised. A name (pipeline or declaration) already
    defined by an earlier file is an error on the later file naming both files; the earlier one
    is kept.
    """
    directory = Path(directory)
    out = Discovered()
    if not directory.is_dir():
        out.errors.append(
            PipelineLoadError(
                "pipelines directory does not exist.",
                path=directory,
                fix="Create it, or point PIPELINES_DIR at the folder holding your pipeline files.",
            )
        )
        return out
    owners: dict[str, Path] = {}
    files = sorted(p for p in directory.iterdir() if _is_pipeline_file(p))
    for file in files:
        try:
            loaded = load_declarations(file)
        except PipelineLoadError as exc:
            out.errors.append(exc)
            continue
        for items, into in ((loaded.pipelines, out.pipelines), (loaded.declarations, out.declarations)):
            for item in items:
                name = item.name
                if name in owners:
                    out.errors.append(
                        PipelineLoadError(
                            f"name {name!r} is already defined in {owners[name]}.",
                            path=file,
                            fix="Pipeline and dataset file names must be unique across the pipelines directory; "
                            "rename one of them.",
                        )
                    )
                    continue
                owners[name] = file
                into.append(item)
    return out


def discover_pipelines(directory: str | os.PathLike[str]) -> tuple[list[PipelineSpec], list[PipelineLoadError]]:
    """:func:`discover_declarations`, pipelines only: ``(specs, errors)``."""
    found = discover_declarations(directory)
    return found.pipelines, found.errors
