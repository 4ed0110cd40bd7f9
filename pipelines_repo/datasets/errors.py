"""Errors of the datasets room: every one names the file or dataset, the place, the cause and the fix."""

from __future__ import annotations

from ..engine.errors import PipelineError


class DatasetError(PipelineError):
    """A dataset command cannot go on. ``str()`` is ``<where>: <cause>. Fix: <fix>``; ``where`` names
    the file and line, the dataset or the flag concerned."""

    def __init__(self, where: str, cause: str, fix: str):
        self.where = where
        super().__init__(cause, fix=fix, message=f"{where}: {cause}. Fix: {fix}")


class DatasetFileError(DatasetError):
    """The input file is unreadable or malformed; nothing was written."""


class MappingError(DatasetError):
    """The column mapping does not fit the file (unknown column, bad parse rule, bad value)."""


class SchemaInvalidError(DatasetError):
    """More rows failed the dataset's enforced schemas than ``max_invalid`` allows; nothing was written."""

    def __init__(self, where: str, invalid: int, max_invalid: int, quarantine_path: str | None):
        self.invalid, self.max_invalid, self.quarantine_path = invalid, max_invalid, quarantine_path
        saved = f"; the rows and every error are in {quarantine_path}" if quarantine_path else ""
        super().__init__(
            where,
            f"{invalid} row(s) do not conform to the dataset's enforced schemas (allowed: {max_invalid}){saved}",
            "fix those rows, or relax the schema (`datasets schema set`), or raise --max-invalid to write the valid rows",
        )
