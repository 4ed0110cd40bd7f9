"""A dataset at one version -> ``<path>/version=<xact_id>/part-*.<ext>``, a manifest, ``_SUCCESS``.

The ``dataset_export`` asset of a ``DatasetFile(export={"path": ..., "format": ...})`` calls it
after each upload: the folder is named by the version, so a re-run of the same version overwrites
the same keys, and the manifest (written last, as for windows) says the export is complete.
"""

from __future__ import annotations

from ..client import BraintrustClient
from .layout import FileEntry, HashingSink, Manifest, part_name, remove_stale_parts, start_window, write_manifest
from .run import export
from .sinks import open_sink
from .sources import DatasetSource
from .window_export import WindowExport, _file_rows

__all__ = ["export_dataset_version"]


def export_dataset_version(client: BraintrustClient, dataset_id: str, version: str, path: str, *, fmt: str = "jsonl",
                           name: str = "dataset", rows_per_file: int = 100_000) -> WindowExport:
    sink = open_sink(path)
    folder = f"version={version}"
    sink.check()
    start_window(sink, folder)
    hashing = HashingSink(sink)
    result = export(client, DatasetSource(dataset_id, version=version, name="part"), hashing, fmt=fmt,
                    file_name=part_name(folder, fmt), rows_per_file=rows_per_file)
    keys = [f"{folder}/part-{i:05d}.{fmt}" for i in range(result.files)]
    stale = remove_stale_parts(sink, folder, keys)
    rows = _file_rows(result.rows, result.files, rows_per_file)
    manifest = Manifest(
        automation=name, window_start="", window_end="", xact_after="0", xact_through=str(version), format=fmt,
        files=[FileEntry(key=k, rows=r, bytes=hashing.sizes.get(p, 0), sha256=hashing.digests.get(p, ""))
               for k, r, p in zip(keys, rows, result.paths)],
        max_xact_id=str(version), definition={"name": name, "dataset_id": dataset_id, "version": str(version), "mode": "snapshot"},
    )
    url = write_manifest(sink, folder, manifest)
    return WindowExport(folder=folder, manifest_url=url, rows=result.rows, files=result.files, bytes=result.bytes,
                        paths=result.paths, max_xact_id=str(version), stale_removed=len(stale), snapshot=True)
