"""A TypeScript/JavaScript pipeline file's content digest: the file and its local imports.

Local imports are relative specifiers (``./x``, ``../lib/y``) in ``import ... from``,
``export ... from``, ``import("...")`` and ``require("...")``; each resolves like Node/tsx: the
exact file, else with one of :data:`_EXTENSIONS`, else ``<dir>/index.<ext>``; a ``.js`` specifier
may name a ``.ts`` source (TypeScript's convention). They are followed transitively. Package
imports (``braintrust``) are not hashed: their versions are pinned by ``package-lock.json``, whose
digest is part of the runner digest. Unresolvable specifiers are ignored here (Node reports them).
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

__all__ = ["local_imports", "source_digest"]

_SPECIFIER = re.compile(
    r"""(?:\bfrom\s*|\bimport\s*\(\s*|\brequire\s*\(\s*|^\s*import\s+)(['"])(\.{1,2}/[^'"\n]+)\1""",
    re.MULTILINE,
)
_EXTENSIONS = (".ts", ".tsx", ".mts", ".cts", ".js", ".jsx", ".mjs", ".cjs", ".json")
_TS_FOR_JS = {".js": (".ts", ".tsx"), ".jsx": (".tsx",), ".mjs": (".mts",), ".cjs": (".cts",)}


def _resolve(base: Path, specifier: str) -> Path | None:
    target = (base.parent / specifier).resolve()
    candidates = [target, *(target.with_name(target.name + ext) for ext in _EXTENSIONS)]
    candidates += [target.with_suffix(ts) for ts in _TS_FOR_JS.get(target.suffix, ())]
    candidates += [target / f"index{ext}" for ext in _EXTENSIONS]
    return next((c for c in candidates if c.is_file()), None)


def local_imports(file: str | os.PathLike[str]) -> list[Path]:
    """The file and every local file it imports, transitively, in discovery order."""
    first = Path(file).resolve()
    seen: dict[Path, None] = {first: None}
    todo = [first]
    while todo:
        current = todo.pop()
        try:
            text = current.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        if current.suffix == ".json":
            continue
        for match in _SPECIFIER.finditer(text):
            found = _resolve(current, match.group(2))
            if found is not None and found not in seen:
                seen[found] = None
                todo.append(found)
    return list(seen)


def source_digest(file: str | os.PathLike[str]) -> str:
    """sha256 over the file's bytes and its local imports' (paths relative to the file's folder)."""
    root = Path(file).resolve().parent
    digest = hashlib.sha256()
    for path in sorted(local_imports(file)):
        try:
            data = path.read_bytes()
        except OSError:
            data = b""
        digest.update(os.path.relpath(path, root).encode("utf-8") + b"\0")
        digest.update(hashlib.sha256(data).digest())
    return digest.hexdigest()
