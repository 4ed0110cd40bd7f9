"""Exports: a source (spans, traces rolled up, a SQL/BTQL query, a dataset version, an experiment) -> a writer
(jsonl[.gz], json, csv, parquet) -> a sink (a local folder or an object store), streamed.

    from pipelines_repo.export import export, open_sink, SpanSource
    result = export(client, SpanSource(project_id), open_sink("s3://bucket/prefix/"), fmt="parquet")

No Dagster imports: the CLI (``cli/export.py``) and, later, the Dagster assets call :func:`export`.
"""

from .errors import ExportError, ExportOptionsError, StorageError
from .run import ExportResult, export
from .sinks import LocalSink, ObjectSink, open_sink
from .sources import DatasetSource, ExperimentSource, QuerySource, SpanSource, TraceSource
from .writers import FORMATS

__all__ = [
    "DatasetSource", "ExperimentSource", "ExportError", "ExportOptionsError", "ExportResult", "FORMATS", "LocalSink", "ObjectSink",
    "QuerySource", "SpanSource", "StorageError", "TraceSource", "export", "open_sink",
]
