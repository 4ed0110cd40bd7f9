"""Load TypeScript/JavaScript pipeline files (``.ts .tsx .js .jsx``) into :class:`PipelineSpec`.

    load_node_file(path) -> LoadedFile     # engine.loader dispatches here by suffix

Listing a file's pipelines runs it once in Node (``runner.mjs``: the SDK registry
``globalThis.__braintrust_dataset_pipelines``), then the process exits; the listing is cached in
memory and on disk (:func:`listing_cache_dir`) by a key over the file's content and its local
imports (``engine.node_imports``), the runner's own files and lockfile, and the Node version, so
Dagster's repeated definition loads spawn no Node process until a file changes.

Each spec's ``transform`` is an async callable that sends the item to the file's one long-lived
runner (started at the first transform, restarted when the file changed or the process died), so
``engine.transform.TransformStream`` and everything after it is the Python path unchanged: the
same argument filtering, row normalization (fallback ids, origin), validation, error policy and
``run_output``. Orchestration options come from the file's ``export const dagster = {...}``
(the SDK copies only known fields into its registry, so a ``dagster`` key inside
``DatasetPipeline({...})`` would be dropped): one options object for every pipeline of the file,
or an object keyed by pipeline name. Code version: sha256 over that content digest, the
pipeline's name and its transform's source (as Node prints it).
"""

from __future__ import annotations

import asyncio
import atexit
import hashlib
import json
import os
import threading
from collections.abc import Mapping
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from .loader import LoadedFile, PipelineLoadError
from .node_env import RUNNER_DIR, NodeUnavailableError, check_node
from .node_imports import source_digest
from .node_runner import NodeLoadFailedError, NodeRunner, NodeRunnerCrashedError
from .spec import PipelineOptions, PipelineOptionsError, PipelineSpec, parse_options, spec_from_definition

__all__ = ["listing_cache_dir", "load_node_file", "runner_for", "shutdown_runners"]

CACHE_ENV = "BT_DAGSTER_NODE_CACHE"
TIMEOUT_ENV = "BT_DAGSTER_NODE_TIMEOUT"
_SOURCE_KEYS = {"projectId": "project_id", "projectName": "project_name", "orgName": "org_name", "filter": "filter", "scope": "scope"}
_TARGET_KEYS = {
    "projectId": "project_id",
    "projectName": "project_name",
    "orgName": "org_name",
    "datasetName": "dataset_name",
    "description": "description",
    "metadata": "metadata",
}
_CAMEL = {f"{side}.{snake}": f"{side}.{camel}" for side, keys in (("source", _SOURCE_KEYS), ("target", _TARGET_KEYS)) for camel, snake in keys.items()}

_LISTINGS: dict[str, dict[str, Any]] = {}
_RUNNERS: dict[str, tuple[str, NodeRunner]] = {}
_RUNNERS_LOCK = threading.Lock()


def listing_cache_dir() -> Path:
    """``$BT_DAGSTER_NODE_CACHE``, else ``$DAGSTER_HOME/node-listings``, else the user cache dir."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    if os.environ.get("DAGSTER_HOME"):
        return Path(os.environ["DAGSTER_HOME"]) / "node-listings"
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "bt-dagster" / "node-listings"


def _runner_digest() -> bytes:
    digest = hashlib.sha256()
    for name in ("runner.mjs", "resolve-hook.mjs", "package-lock.json"):
        try:
            digest.update((RUNNER_DIR / name).read_bytes())
        except OSError:
            pass
    return digest.digest()


def _listing(path: Path, content: str, node_version: str) -> dict[str, Any]:
    """The runner's ready message for ``path``, from the caches or one Node run."""
    key = hashlib.sha256(
        b"\0".join([content.encode(), _runner_digest(), node_version.encode(), os.fspath(path).encode()])
    ).hexdigest()
    if key in _LISTINGS:
        return _LISTINGS[key]
    cached = listing_cache_dir() / f"{key}.json"
    try:
        listing = json.loads(cached.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        listing = None
    if not isinstance(listing, dict):
        runner = NodeRunner.start(path)
        runner.close()
        listing = runner.listing
        try:
            cached.parent.mkdir(parents=True, exist_ok=True)
            tmp = cached.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps(listing), encoding="utf-8")
            os.replace(tmp, cached)
        except OSError:
            pass  # an unwritable cache only costs a Node run per load
    _LISTINGS[key] = listing
    return listing


def _load_error(exc: NodeLoadFailedError, path: Path) -> PipelineLoadError:
    if exc.js_name == "SyntaxError" or "Transform failed" in exc.js_message:
        fix = "Fix the TypeScript/JavaScript syntax in the file."
    elif "Cannot find" in exc.js_message or "ERR_MODULE_NOT_FOUND" in exc.js_stack:
        fix = f"Fix the import, or install the package (packages the runner provides: braintrust, tsx, zod in {RUNNER_DIR})."
    else:
        fix = "Fix the error in the pipeline file; module-level code must run without network access or input."
    first = exc.js_message.strip().splitlines()[0] if exc.js_message.strip() else ""
    detail = " ".join(line.strip() for line in exc.js_message.strip().splitlines()[1:4])
    cause = f"failed to load in Node: {exc.js_name}: {first}" + (f" ({detail})" if detail else "")
    return PipelineLoadError(cause.rstrip(".") + ".", path=path, fix=fix)


def _options_for(path: Path, names: list[str], exported: Any) -> dict[str, PipelineOptions]:
    """Per pipeline name: the ``dagster`` export's options (validated like Python's), or defaults."""
    if exported is None:
        return {name: PipelineOptions() for name in names}
    if not isinstance(exported, Mapping):
        raise PipelineLoadError(
            f"`export const dagster` must be an object (got {type(exported).__name__}).",
            path=path,
            fix="Export an options object, e.g. export const dagster = { partitions: \"daily\", schedule_hour: 3 }.",
        )
    keyed = bool(exported) and all(key in names and isinstance(value, Mapping) for key, value in exported.items())
    out: dict[str, PipelineOptions] = {}
    for name in names:
        given = exported.get(name, {}) if keyed else exported
        try:
            out[name] = parse_options(given)
        except PipelineOptionsError as exc:
            text = str(exc).replace("DatasetPipeline() got", f"`export const dagster` (pipeline {name!r}) has")
            raise PipelineLoadError(text, path=path, fix="Use only the listed options.") from None
    return out


def _code_version(digest: str, name: str, transform_source: str) -> str:
    data = f"node\0{digest}\0{name}\0{transform_source}".encode()
    return hashlib.sha256(data).hexdigest()[:12]


def _camel(message: str) -> str:
    for snake, camel in _CAMEL.items():
        message = message.replace(snake, camel)
    return message


def _spec(path: Path, entry: Mapping[str, Any], digest: str, options: Mapping[str, PipelineOptions], index: int) -> PipelineSpec:
    name = (entry.get("name") or "").strip() or path.stem
    source = {_SOURCE_KEYS.get(k, k): v for k, v in (entry.get("source") or {}).items() if v is not None}
    target = {_TARGET_KEYS.get(k, k): v for k, v in (entry.get("target") or {}).items() if v is not None}
    definition = SimpleNamespace(name=name, source=source, target=target, transform=make_transform(path, name, digest))
    try:
        spec = spec_from_definition(definition, file=path, default_name=path.stem, options=options[name])
    except ValueError as exc:
        raise PipelineLoadError(
            f"pipeline {name!r} (#{index + 1}) is invalid: {_camel(str(exc))}.",
            path=path,
            fix="Fix the DatasetPipeline({...}) fields: source: {projectName: ..., scope: \"span\" | \"trace\"}, "
            "target: {datasetName: ...}.",
        ) from None
    return spec.model_copy(update={"code_version": _code_version(digest, name, entry.get("transformSource") or "")})


def load_node_file(path: Path) -> LoadedFile:
    """List a TS/JS file's pipelines (cached) and build their specs; every failure is a
    :class:`PipelineLoadError` (Node missing or too old, a syntax or import error, bad fields)."""
    path = Path(os.path.abspath(path))
    try:
        node_version = check_node()
    except NodeUnavailableError as exc:
        raise PipelineLoadError(exc.cause, path=path, fix=exc.fix) from None
    digest = source_digest(path)
    try:
        listing = _listing(path, digest, node_version)
    except NodeLoadFailedError as exc:
        raise _load_error(exc, path) from None
    except NodeRunnerCrashedError as exc:
        raise PipelineLoadError(exc.cause, path=path, fix=exc.fix) from None
    entries = listing.get("pipelines") or []
    if not entries:
        raise PipelineLoadError(
            "no dataset pipeline registered.",
            path=path,
            fix='Call DatasetPipeline({ name, source, transform, target }) at module level (import { DatasetPipeline } from "braintrust").',
        )
    names = [(entry.get("name") or "").strip() or path.stem for entry in entries]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise PipelineLoadError(
            f"several pipelines are named {', '.join(repr(n) for n in duplicates)} (an unnamed pipeline takes the file stem).",
            path=path,
            fix="Give each DatasetPipeline({...}) a distinct name.",
        )
    options = _options_for(path, names, listing.get("dagster"))
    return LoadedFile(pipelines=[_spec(path, entry, digest, options, i) for i, entry in enumerate(entries)])


# -- the long-lived runners ---------------------------------------------------------------------


def _running(path: Path, digest: str) -> NodeRunner | None:
    with _RUNNERS_LOCK:
        current = _RUNNERS.get(os.fspath(path))
    if current is not None and current[0] == digest and current[1].alive:
        return current[1]
    return None


def runner_for(path: Path, digest: str) -> NodeRunner:
    """The file's running runner for content ``digest`` (the one its specs were loaded from),
    started, or restarted when the file changed or the process died."""
    key = os.fspath(path)
    with _RUNNERS_LOCK:
        current = _RUNNERS.get(key)
        if current is not None and current[0] == digest and current[1].alive:
            return current[1]
        if current is not None:
            current[1].close()
        check_node()
        try:
            runner = NodeRunner.start(path)
        except NodeLoadFailedError as exc:
            raise NodeRunnerCrashedError(_load_error(exc, path).cause, path=path, fix="Fix the file and rerun.") from None
        _RUNNERS[key] = (digest, runner)
        return runner


@atexit.register
def shutdown_runners() -> None:
    """Close every runner (at exit; tests call it too)."""
    with _RUNNERS_LOCK:
        runners = [runner for _, runner in _RUNNERS.values()]
        _RUNNERS.clear()
    for runner in runners:
        runner.close()


def make_transform(path: Path, pipeline: str, digest: str) -> Any:
    """The spec's ``transform``: bt's TS arguments (span scope ``{id, input, output, expected,
    metadata, trace}``, trace scope ``{trace}``) sent to the runner; returns the JS value."""
    timeout = float(os.environ.get(TIMEOUT_ENV) or 600)

    async def transform(id=None, input=None, output=None, expected=None, metadata=None, trace=None):  # noqa: A002
        # starting Node blocks for about a second: do it off the event loop, once
        runner = _running(path, digest) or await asyncio.to_thread(runner_for, path, digest)
        args = {} if id is None else {"id": id, "input": input, "output": output, "expected": expected, "metadata": metadata}
        future = runner.submit(pipeline, args, trace, asyncio.get_running_loop())
        try:
            return await asyncio.wait_for(asyncio.wrap_future(future), timeout)
        except asyncio.TimeoutError:
            raise TimeoutError(f"the TS transform did not finish within {timeout:.0f} s ({TIMEOUT_ENV})") from None

    transform.__qualname__ = transform.__name__ = f"node_transform[{path.name}:{pipeline}]"
    return transform
