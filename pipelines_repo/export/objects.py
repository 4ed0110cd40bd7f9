"""Small object operations over a sink's folder: put, read, delete and list names.

The export writes data files through ``Sink.open`` (streamed, multipart); the window layout also
needs to publish tiny files (the manifest, ``_SUCCESS``), read them back, and delete stale parts.
These go through obstore for object stores and plain file calls for local folders, with every
failure turned into a :class:`StorageError` naming the cause and the fix.
"""

from __future__ import annotations


from pathlib import Path

from .errors import storage_error
from .sinks import LocalSink, ObjectSink, Sink

__all__ = ["delete_object", "list_names", "put_bytes", "read_bytes"]


def _base(sink: Sink) -> Sink:
    """The folder or object store under wrappers (hashing, fault injection) that keep ``inner``."""
    while hasattr(sink, "inner"):
        sink = sink.inner  # type: ignore[attr-defined]
    return sink


def put_bytes(sink: Sink, name: str, data: bytes) -> str:
    """Publish ``name`` with ``data`` (atomically: a rename or a single put); returns its URL."""
    with sink.open(name) as handle:  # type: ignore[attr-defined]
        handle.write(data)
    return sink.join(name)


def read_bytes(sink: Sink, name: str) -> bytes | None:
    """The object's bytes, None when it does not exist."""
    sink = _base(sink)
    if isinstance(sink, LocalSink):
        path = sink.folder / name
        try:
            return path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise storage_error(exc, sink.join(name)) from None
    import obstore
    from obstore.exceptions import NotFoundError

    assert isinstance(sink, ObjectSink)
    try:
        return bytes(obstore.get(sink.store, sink.key(name)).bytes())
    except (NotFoundError, FileNotFoundError):
        return None
    except Exception as exc:  # noqa: BLE001
        raise storage_error(exc, sink.join(name)) from None


def delete_object(sink: Sink, name: str) -> None:
    """Delete ``name`` if it exists."""
    sink = _base(sink)
    if isinstance(sink, LocalSink):
        try:
            (sink.folder / name).unlink(missing_ok=True)
        except OSError as exc:
            raise storage_error(exc, sink.join(name)) from None
        return
    import obstore
    from obstore.exceptions import NotFoundError

    assert isinstance(sink, ObjectSink)
    try:
        obstore.delete(sink.store, sink.key(name))
    except (NotFoundError, FileNotFoundError):
        pass
    except Exception as exc:  # noqa: BLE001
        raise storage_error(exc, sink.join(name)) from None


def list_names(sink: Sink, folder: str) -> list[str]:
    """Names (relative to the sink) of the objects directly inside ``folder``, sorted."""
    folder, sink = folder.strip("/"), _base(sink)
    if isinstance(sink, LocalSink):
        path = sink.folder / folder
        if not path.is_dir():
            return []
        return sorted(f"{folder}/{p.name}" for p in Path(path).iterdir() if p.is_file())
    import obstore

    assert isinstance(sink, ObjectSink)
    try:
        listed = obstore.list_with_delimiter(sink.store, sink.key(folder) + "/")
    except Exception as exc:  # noqa: BLE001
        raise storage_error(exc, sink.join(folder)) from None
    cut = len(sink.prefix) + 1 if sink.prefix else 0
    return sorted(obj["path"][cut:] for obj in listed["objects"])


