"""What a pipeline is: validated source, target, transform and orchestration options.

A pipeline file written for Braintrust's CLI calls the SDK's ``DatasetPipeline(...)``, which only
appends a ``DatasetPipelineDefinition`` to ``braintrust.dataset_pipeline._DATASET_PIPELINES``.
The loader (``engine/loader.py``) turns each registered definition into a :class:`PipelineSpec`
here, validating the dicts the SDK leaves unchecked.

This project's own :func:`DatasetPipeline` has the SDK's signature plus keyword-only
orchestration options (:class:`PipelineOptions`). It still registers through the SDK, so
``bt datasets pipeline ...`` keeps working on the same file; the options are remembered in a
side table keyed by the identity of the SDK's definition object (see :func:`options_for`).

Defaults chosen here (documented because the Dagster compiler relies on them):

* ``start_date`` defaults to the fixed :data:`DEFAULT_START_DATE` (2025-01-01), not "N days ago":
  a moving start would change the partition set (and the Dagster definitions) every day.
* ``code_version`` is the first 12 hex chars of sha256 over the pipeline file's text and the
  transform's own source, so editing a transform (even one imported from another module) changes it.
"""

from __future__ import annotations

import difflib
import functools
import hashlib
import inspect
import linecache
import threading
import weakref
from collections.abc import Callable, Mapping
from datetime import date
from pathlib import Path
from typing import Any, Literal, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from .errors import PipelineError

__all__ = [
    "DEFAULT_START_DATE",
    "DatasetPipeline",
    "PipelineOptions",
    "PipelineOptionsError",
    "PipelineSpec",
    "Scope",
    "SourceSpec",
    "TargetSpec",
    "options_for",
    "parse_options",
    "spec_from_definition",
]

Scope = Literal["span", "trace"]

#: Fixed default first partition. Fixed (not relative to today) so definitions are stable.
DEFAULT_START_DATE = date(2025, 1, 1)

MiB = 1024 * 1024

_Spec = TypeVar("_Spec", bound=BaseModel)


def _blank_to_none(value: Any) -> Any:
    if isinstance(value, str):
        value = value.strip()
        return value or None
    return value


def _overridden(model: _Spec, **overrides: Any) -> _Spec:
    """``model`` re-validated with the non-None ``overrides`` (bt's ``--source-*``/``--target-*``
    flags); a new project *name* clears the project id unless an id is given too."""
    update = {key: value for key, value in overrides.items() if value is not None}
    if "project_name" in update:
        update.setdefault("project_id", None)
    return type(model).model_validate({**model.model_dump(), **update})


class SourceSpec(BaseModel):
    """Where candidates come from: a project's logs, an optional BTQL filter, span or trace scope.

    Blank strings become ``None``. ``filter`` is stored stripped (bt trims it before sending).
    Unknown keys are rejected so a typo (``"projectname"``) is not silently ignored.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    project_name: str | None = None
    project_id: str | None = None
    org_name: str | None = None
    filter: str | None = None
    scope: Scope = "span"

    @field_validator("project_name", "project_id", "org_name", "filter", mode="before")
    @classmethod
    def _strip(cls, value: Any) -> Any:
        return _blank_to_none(value)

    def to_bt(self) -> dict[str, Any]:
        """camelCase dict in bt's field order (``PipelineSourceInspect``), ``None`` fields omitted.

        This is the ``source`` object of bt's ``pull.spec.json`` / manifests.
        """
        pairs = (
            ("projectId", self.project_id),
            ("projectName", self.project_name),
            ("orgName", self.org_name),
            ("filter", self.filter),
            ("scope", self.scope),
        )
        return {key: value for key, value in pairs if value is not None}

    @classmethod
    def from_bt(cls, value: Mapping[str, Any]) -> SourceSpec:
        """Inverse of :meth:`to_bt` (reads a ``source`` from a bt pull manifest)."""
        return cls(
            project_id=value.get("projectId"),
            project_name=value.get("projectName"),
            org_name=value.get("orgName"),
            filter=value.get("filter"),
            scope=value.get("scope") or "span",
        )

    def with_overrides(
        self,
        *,
        project_name: str | None = None,
        project_id: str | None = None,
        org_name: str | None = None,
        filter: str | None = None,
    ) -> SourceSpec:
        """bt's ``--source-*`` semantics: a project *name* override clears the project id."""
        return _overridden(
            self, project_name=project_name, project_id=project_id, org_name=org_name, filter=filter
        )


class TargetSpec(BaseModel):
    """The dataset rows go to. ``dataset_name`` is required and stripped."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    dataset_name: str
    project_name: str | None = None
    project_id: str | None = None
    org_name: str | None = None
    description: str | None = None
    metadata: dict[str, Any] | None = None

    @field_validator("project_name", "project_id", "org_name", mode="before")
    @classmethod
    def _strip(cls, value: Any) -> Any:
        return _blank_to_none(value)

    @field_validator("dataset_name", mode="before")
    @classmethod
    def _dataset_name(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = value.strip()
            if not value:
                raise ValueError(
                    "target.dataset_name is blank; set target={'dataset_name': '<dataset name>'}"
                )
        return value

    def to_bt(self) -> dict[str, Any]:
        """camelCase dict in bt's field order (``PipelineTargetInspect``), ``None`` fields omitted."""
        pairs = (
            ("projectId", self.project_id),
            ("projectName", self.project_name),
            ("orgName", self.org_name),
            ("datasetName", self.dataset_name),
            ("description", self.description),
            ("metadata", self.metadata),
        )
        return {key: value for key, value in pairs if value is not None}

    def with_overrides(
        self,
        *,
        project_name: str | None = None,
        project_id: str | None = None,
        org_name: str | None = None,
        dataset_name: str | None = None,
    ) -> TargetSpec:
        """bt's ``--target-*`` semantics: a project *name* override clears the project id."""
        return _overridden(
            self, project_name=project_name, project_id=project_id, org_name=org_name, dataset_name=dataset_name
        )

    def with_default_org(self, org_name: str | None) -> TargetSpec:
        """bt: the target inherits the source org only when it names none."""
        if self.org_name is not None or not org_name:
            return self
        return self.model_copy(update={"org_name": org_name})


class PipelineOptions(BaseModel):
    """Orchestration extras a pipeline file may declare (all optional).

    ``partitions``/``start_date``/``timezone``: the partitioned time windows (``start_date`` is
    the first partition; default :data:`DEFAULT_START_DATE`). ``schedule_hour``/``schedule_minute``:
    when the nightly job runs, in ``timezone``. ``lookback_days``: how many past partitions the
    late-data sensor re-checks. ``on_error``: ``fail`` aborts on the first transform error;
    ``skip`` records it in ``errors.jsonl`` and continues; ``max_error_rate`` is the skipped /
    candidates ratio above which a ``skip`` run still fails. ``max_concurrency``: transform calls
    in flight. ``page_size``: BTQL page size (<= 1000). ``push_batch_rows``/``push_batch_bytes``:
    upload batch limits (bt: 1000 rows, half of the server's 6 MiB payload limit).
    ``on_conflict``: ``overwrite`` (bt) replaces rows edited in the dataset; ``keep_curated``
    keeps rows someone edited or deleted since this pipeline last wrote them (``engine.delta``).
    ``max_invalid_rows``: rows failing the target's enforced schemas a push may quarantine and
    still push the valid rows (``engine.quarantine``); above it nothing is pushed.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    partitions: Literal["hourly", "daily", "weekly"] = "daily"
    start_date: date = DEFAULT_START_DATE
    timezone: str = "UTC"
    schedule_hour: int = Field(default=2, ge=0, le=23)
    schedule_minute: int = Field(default=0, ge=0, le=59)
    lookback_days: int = Field(default=3, ge=0)
    on_error: Literal["fail", "skip"] = "fail"
    max_error_rate: float = Field(default=0.05, ge=0.0, le=1.0)
    max_concurrency: int = Field(default=8, ge=1)
    page_size: int = Field(default=1000, ge=1, le=1000)
    push_batch_rows: int = Field(default=1000, ge=1, le=1000)
    push_batch_bytes: int = Field(default=3 * MiB, ge=1024)
    # Keep the runtime output in metadata.run_output (engine/run_output.py): True, or a span type.
    run_output: bool | str = False
    on_conflict: Literal["overwrite", "keep_curated"] = "overwrite"
    # {"path": folder or URL, "format": "jsonl"|"parquet"}: adds <name>/dataset_export after dataset_version
    export: dict[str, str] | None = None
    max_invalid_rows: int = Field(default=0, ge=0)

    @field_validator("export")
    @classmethod
    def _export(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        if value is None:
            return None
        path, fmt = value.get("path"), value.get("format", "jsonl")
        if not isinstance(path, str) or not path.strip() or fmt not in ("jsonl", "parquet") or set(value) - {"path", "format"}:
            raise ValueError("export takes {'path': a folder or s3://, gs://, az://, file:// URL, 'format': 'jsonl' or 'parquet'}")
        return {"path": path, "format": fmt}

    @field_validator("run_output")
    @classmethod
    def _run_output(cls, value: bool | str) -> bool | str:
        if isinstance(value, str) and not value.strip():
            raise ValueError("run_output takes True or a span type such as 'llm'")
        return value

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown timezone {value!r}; use an IANA name such as 'UTC' or 'Europe/Paris'") from exc
        return value

    @classmethod
    def option_names(cls) -> list[str]:
        return list(cls.model_fields)


class PipelineOptionsError(PipelineError, TypeError, ValueError):
    """An unknown or invalid orchestration option passed to :func:`DatasetPipeline`."""


def format_validation_error(err: ValidationError, prefix: str = "") -> str:
    """One line per problem: ``source.scope: Input should be 'span' or 'trace' (got 'spans')``."""
    parts = []
    for problem in err.errors():
        loc = ".".join(str(part) for part in (prefix, *problem.get("loc", ())) if part != "")
        message = problem.get("msg", "invalid value")
        message = message.removeprefix("Value error, ")
        if loc and message.startswith(loc):
            parts.append(message)
        elif problem.get("type") == "missing":
            parts.append(f"{loc}: is required")
        elif problem.get("type") == "extra_forbidden":
            allowed = _ALLOWED_KEYS.get(prefix)
            parts.append(f"{loc}: unknown key" + (f" (allowed: {', '.join(allowed)})" if allowed else ""))
        else:
            got = problem.get("input")
            shown = repr(got)
            if len(shown) > 60:
                shown = shown[:57] + "..."
            parts.append(f"{loc}: {message} (got {shown})")
    return "; ".join(parts)


_ALLOWED_KEYS = {
    "source": list(SourceSpec.model_fields),
    "target": list(TargetSpec.model_fields),
}


def parse_options(options: Mapping[str, Any]) -> PipelineOptions:
    """Validate orchestration options; unknown names raise naming them and listing valid ones."""
    valid = PipelineOptions.option_names()
    unknown = [key for key in options if key not in valid]
    if unknown:
        hints = []
        for key in unknown:
            close = difflib.get_close_matches(key, valid, n=1)
            hints.append(f"{key!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
        raise PipelineOptionsError(
            f"DatasetPipeline() got unknown option{'s' if len(unknown) > 1 else ''} {', '.join(hints)}. "
            f"Valid options: {', '.join(valid)}."
        )
    try:
        return PipelineOptions(**options)
    except ValidationError as err:
        raise PipelineOptionsError(f"DatasetPipeline() got invalid options: {format_validation_error(err)}") from None


# id(definition) -> options; entries vanish when the definition is garbage collected.
_OPTIONS: dict[int, PipelineOptions] = {}
_OPTIONS_LOCK = threading.Lock()


def _forget(key: int) -> None:
    with _OPTIONS_LOCK:
        _OPTIONS.pop(key, None)


def DatasetPipeline(  # noqa: N802 - mirrors the SDK's name
    name: str | None = None,
    *,
    source: Mapping[str, Any],
    transform: Callable[..., Any],
    target: Mapping[str, Any],
    **options: Any,
) -> Any:
    """The SDK's ``DatasetPipeline`` plus keyword-only orchestration options.

    Registers through ``braintrust.dataset_pipeline.DatasetPipeline`` (so bt's CLI still sees the
    pipeline) and returns the SDK's definition object. Options are validated now: an unknown or
    invalid option raises :class:`PipelineOptionsError` (a ``TypeError`` and a ``ValueError``).
    """
    parsed = parse_options(options)
    from braintrust import dataset_pipeline as sdk

    definition = sdk.DatasetPipeline(name, source=source, transform=transform, target=target)
    key = id(definition)
    with _OPTIONS_LOCK:
        _OPTIONS[key] = parsed
    weakref.finalize(definition, _forget, key)
    return definition


def options_for(definition: Any) -> PipelineOptions:
    """Options declared for an SDK definition, or the defaults when it came from ``braintrust``."""
    with _OPTIONS_LOCK:
        found = _OPTIONS.get(id(definition))
    return found if found is not None else PipelineOptions()


def _callable_target(fn: Any) -> Any:
    """The function whose source best describes ``fn`` (unwraps partials, bound methods, objects)."""
    seen = 0
    while seen < 10:
        seen += 1
        if isinstance(fn, functools.partial):
            fn = fn.func
            continue
        wrapped = getattr(fn, "__wrapped__", None)
        if wrapped is not None:
            fn = wrapped
            continue
        if inspect.ismethod(fn):
            fn = fn.__func__
            continue
        break
    if not (inspect.isfunction(fn) or inspect.isclass(fn)) and callable(fn):
        return type(fn)
    return fn


def _transform_source(transform: Any) -> str:
    target = _callable_target(transform)
    try:
        filename = inspect.getsourcefile(target)
        if filename:
            linecache.checkcache(filename)
        return inspect.getsource(target)
    except (OSError, TypeError):
        code = getattr(target, "__code__", None)
        if code is not None:
            return f"{code.co_code.hex()}:{code.co_consts!r}:{code.co_names!r}"
        return repr(getattr(target, "__qualname__", target))


def compute_code_version(file_text: str | None, transform: Any) -> str:
    """Short sha256 over the pipeline file's text and the transform's source."""
    digest = hashlib.sha256()
    digest.update(b"file\0")
    digest.update((file_text or "").encode("utf-8"))
    digest.update(b"\0transform\0")
    digest.update(_transform_source(transform).encode("utf-8"))
    return digest.hexdigest()[:12]


class PipelineSpec(BaseModel):
    """A loaded, validated pipeline: what the engine stages, the CLI and Dagster consume."""

    model_config = ConfigDict(arbitrary_types_allowed=True, frozen=True)

    name: str
    source: SourceSpec
    target: TargetSpec
    transform: Callable[..., Any]
    options: PipelineOptions = Field(default_factory=PipelineOptions)
    file: Path | None = None
    code_version: str

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("pipeline name is blank; pass name='...' to DatasetPipeline()")
        return value

    @property
    def scope(self) -> Scope:
        return self.source.scope


def spec_from_definition(
    definition: Any,
    *,
    file: Path | None = None,
    file_text: str | None = None,
    default_name: str | None = None,
    options: PipelineOptions | None = None,
) -> PipelineSpec:
    """Build a :class:`PipelineSpec` from an SDK ``DatasetPipelineDefinition``.

    Raises ``ValueError`` whose text is the validation problem(s) with dotted locations
    (``target.dataset_name: is required``). The name defaults like bt: ``name`` else
    ``default_name`` (the loader passes the file stem).
    """
    name = getattr(definition, "name", None)
    if name is not None and not isinstance(name, str):
        raise ValueError(f"name: must be a string (got {name!r})")
    name = (name or "").strip() or default_name
    if not name:
        raise ValueError("name: is required")
    source = getattr(definition, "source", None)
    target = getattr(definition, "target", None)
    transform = getattr(definition, "transform", None)
    if not isinstance(source, Mapping):
        raise ValueError(f"source: must be a dict like {{'project_name': ..., 'scope': 'span'}} (got {source!r})")
    if not isinstance(target, Mapping):
        raise ValueError(f"target: must be a dict like {{'dataset_name': ...}} (got {target!r})")
    if not callable(transform):
        raise ValueError(f"transform: must be a function (got {transform!r})")
    problems: list[str] = []
    source_spec = target_spec = None
    try:
        source_spec = SourceSpec.model_validate(dict(source))
    except ValidationError as err:
        problems.append(format_validation_error(err, "source"))
    try:
        target_spec = TargetSpec.model_validate(dict(target))
    except ValidationError as err:
        problems.append(format_validation_error(err, "target"))
    if problems or source_spec is None or target_spec is None:
        raise ValueError("; ".join(problems))
    return PipelineSpec(
        name=name,
        source=source_spec,
        target=target_spec,
        transform=transform,
        options=options if options is not None else options_for(definition),
        file=file,
        code_version=compute_code_version(file_text, transform),
    )
