"""OTLP/HTTP trace ingest for the local plane (`POST /otel/v1/traces`), as Braintrust serves it.

`decode` turns a request body (protobuf or OTLP/JSON, optionally gzip/deflate) into neutral
`OtlpSpan`s; `mapping` turns each span into a logs3 row (the `braintrust.*` and `gen_ai.*`
attribute conventions); `parent` resolves `x-bt-parent`; `ingest` ties them to the store's one
write path. Semantics: docs/BT_COMPAT.md §A.9.
"""

from __future__ import annotations

from .ingest import ingest
from .spans import OtlpError, OtlpSpan

__all__ = ["OtlpError", "OtlpSpan", "ingest"]
