"""Export errors: one line naming the cause and the fix, with every known secret redacted.

    ExportError(PipelineError)
    ├── ExportOptionsError (ValueError)   a bad source, format or destination
    └── StorageError (OSError)            the object store refused or could not be reached

:func:`storage_error` turns an obstore/OS exception into a :class:`StorageError` whose cause
is one of ``credentials``, ``missing bucket``, ``unreachable endpoint``, ``exists`` or ``other``.
"""

from __future__ import annotations

import os
import re

from ..engine.errors import PipelineError

__all__ = ["ExportError", "ExportOptionsError", "StorageError", "redact", "storage_error"]

# Environment variables whose values must never appear in output.
SECRET_ENV = ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AZURE_STORAGE_ACCOUNT_KEY", "AZURE_STORAGE_KEY",
              "AZURE_CLIENT_SECRET", "AZURE_STORAGE_SAS_KEY", "GOOGLE_SERVICE_ACCOUNT_KEY", "BRAINTRUST_API_KEY")
_SIGNATURE = re.compile(r"(X-Amz-Signature=|Signature=|sig=|Credential=)[^&\s\"']+", re.IGNORECASE)


class ExportError(PipelineError):
    """An export failure: ``where`` (the source or destination), ``cause`` and ``fix``."""

    def __init__(self, where: str, cause: str, fix: str | None = None, *, kind: str = "other"):
        self.where = redact(where)
        self.kind = kind
        super().__init__(redact(cause), fix=redact(fix) if fix else None,
                         message=f"{self.where}: {redact(cause)}" + (f". Fix: {redact(fix)}" if fix else ""))


class ExportOptionsError(ExportError, ValueError):
    pass


class StorageError(ExportError, OSError):
    pass


def redact(text: str, *secrets: str | None) -> str:
    """``text`` with the secret environment values (and ``secrets``) replaced by ``***``."""
    if not text:
        return text
    values = [os.environ.get(name) for name in SECRET_ENV] + list(secrets)
    for value in sorted({v for v in values if v and len(v) >= 4}, key=len, reverse=True):
        text = text.replace(value, "***")
    return _SIGNATURE.sub(lambda m: m.group(1) + "***", text)


_CODE = re.compile(r"<Code>([^<]+)</Code>")


def storage_error(exc: BaseException, url: str) -> StorageError:
    """An obstore (or OS) failure at ``url`` as a StorageError naming the cause and the fix."""
    import obstore.exceptions as oe

    text = str(exc)
    code = (_CODE.search(text).group(1) if _CODE.search(text) else "")
    if code in ("NoSuchBucket", "ContainerNotFound") or "bucket does not exist" in text.lower():
        return StorageError(url, f"the bucket does not exist ({code or 'NoSuchBucket'})",
                            "create the bucket first, or correct the bucket name in the URL", kind="missing bucket")
    if isinstance(exc, (oe.PermissionDeniedError, oe.UnauthenticatedError)) or code in (
        "SignatureDoesNotMatch", "InvalidAccessKeyId", "AccessDenied", "ExpiredToken", "AuthenticationFailed",
    ):
        return StorageError(url, f"the store rejected the credentials ({code or type(exc).__name__})",
                            "check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (or the GCS / Azure credentials) "
                            "and that they may write to this bucket", kind="credentials")
    if isinstance(exc, oe.AlreadyExistsError) or code == "PreconditionFailed":
        return StorageError(url, "the object already exists", "drop --no-overwrite to replace it, or choose another path", kind="exists")
    lowered = text.lower()
    if any(s in lowered for s in ("error sending request", "connection refused", "dns error", "timed out",
                                  "connect error", "failed to lookup")):
        return StorageError(url, "the endpoint cannot be reached",
                            "check AWS_ENDPOINT_URL (an S3-compatible server may be http://; then also set "
                            "AWS_ALLOW_HTTP=true) and that the server is running", kind="unreachable endpoint")
    if isinstance(exc, oe.BaseError) and "configuration" in lowered or isinstance(exc, oe.UnknownConfigurationKeyError):
        return StorageError(url, f"the store is not configured: {_first_line(text)}",
                            "set the cloud's standard environment variables (AWS_REGION, AWS_ENDPOINT_URL, ...)",
                            kind="configuration")
    if isinstance(exc, FileNotFoundError) and not isinstance(exc, oe.BaseError):
        return StorageError(url, f"the folder does not exist ({exc.strerror or exc})", "create it first", kind="missing bucket")
    if isinstance(exc, PermissionError):
        return StorageError(url, f"permission denied ({exc.strerror or exc})", "choose a writable path", kind="credentials")
    return StorageError(url, f"the store failed: {_first_line(text)}", "check the URL and the store's status")


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0][:300] if text.strip() else "no detail"
