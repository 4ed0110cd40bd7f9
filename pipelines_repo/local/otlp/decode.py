"""Request bodies to spans: pick the decoder from the Content-Type, inflate gzip/deflate first.

OTLP/HTTP allows `application/x-protobuf` and `application/json`; anything else is a 415, as is
an unknown Content-Encoding. A body that does not inflate or decode is a 400 (the exporter does
not retry a 400, which is right: sending the same bytes again cannot succeed).
"""

from __future__ import annotations

import zlib

from .otjson import spans_from_json
from .proto import spans_from_protobuf
from .spans import OtlpError, OtlpSpan

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
# An inflated body larger than this is refused (a small gzip body can inflate without bound).
MAX_INFLATED_BYTES = 256 * 1024 * 1024


def media_type(content_type: str | None) -> str:
    """The request's OTLP encoding, `PROTOBUF` or `JSON` (415 for anything else)."""
    kind = (content_type or "").split(";", 1)[0].strip().lower()
    if kind in (PROTOBUF, "application/protobuf"):
        return PROTOBUF
    if kind == JSON:
        return JSON
    raise OtlpError(
        f"unsupported Content-Type {content_type!r}: send OTLP as application/x-protobuf or application/json", 415
    )


def inflate(body: bytes, encoding: str | None) -> bytes:
    """The body with its Content-Encoding (`gzip`, `deflate`, or none) undone."""
    name = (encoding or "identity").strip().lower()
    if name in ("", "identity"):
        return body
    if name == "gzip":
        wbits = 16 + zlib.MAX_WBITS
    elif name == "deflate":
        # RFC 9110 deflate is zlib-wrapped, but some clients send a raw stream: accept both.
        wbits = zlib.MAX_WBITS if body[:1] and (body[0] & 0x0F) == 8 else -zlib.MAX_WBITS
    else:
        raise OtlpError(f"unsupported Content-Encoding {encoding!r}: use gzip, deflate or none", 415)
    inflater = zlib.decompressobj(wbits)
    try:
        out = inflater.decompress(body, MAX_INFLATED_BYTES)
    except zlib.error as exc:
        raise OtlpError(f"body is not valid {name} data ({exc}): compress it as Content-Encoding says") from exc
    if inflater.unconsumed_tail:
        raise OtlpError(f"inflated body exceeds {MAX_INFLATED_BYTES} bytes: export smaller batches", 413)
    if not inflater.eof:
        raise OtlpError(f"{name} body is truncated: send the whole compressed stream")
    return out


def decode_spans(body: bytes, content_type: str | None, encoding: str | None) -> list[OtlpSpan]:
    """All spans of an `ExportTraceServiceRequest` body, in request order."""
    kind = media_type(content_type)
    raw = inflate(body, encoding)
    return spans_from_protobuf(raw) if kind == PROTOBUF else spans_from_json(raw)
