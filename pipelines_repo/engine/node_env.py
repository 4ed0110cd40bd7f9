"""Where Node and the runner room are, and whether they can run a TypeScript pipeline file.

    node_command(file) -> NodeCommand   # argv, env, cwd for `node --import tsx runner.mjs FILE`
    check_node() -> str                  # the Node version, or NodeUnavailableError (cached per process)

The runner room is ``pipelines_repo/node`` (``package.json``, committed ``package-lock.json``,
``runner.mjs``), installed with ``npm ci`` (``make install``). tsx is loaded by absolute path, so
it resolves whatever the working directory; ``NODE_PATH`` lets CommonJS-mode files resolve
``braintrust`` from the room, and ``resolve-hook.mjs`` does it for ESM-mode files. ``BT_DAGSTER_NODE``
names the node binary (default: ``node`` on ``PATH``).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path

from .errors import PipelineError

__all__ = [
    "MIN_NODE_MAJOR",
    "NODE_ENV",
    "NODE_SUFFIXES",
    "NodeCommand",
    "NodeUnavailableError",
    "RUNNER_DIR",
    "check_node",
    "node_command",
]

NODE_SUFFIXES = (".ts", ".tsx", ".js", ".jsx")
NODE_ENV = "BT_DAGSTER_NODE"
MIN_NODE_MAJOR = 18  # tsx 4.x: engines.node >= 18
RUNNER_DIR = Path(__file__).resolve().parent.parent / "node"
_TSX_LOADER = RUNNER_DIR / "node_modules" / "tsx" / "dist" / "loader.mjs"
_BRAINTRUST = RUNNER_DIR / "node_modules" / "braintrust" / "package.json"
INSTALL_FIX = (
    f"Install Node {MIN_NODE_MAJOR}+ (Debian/Ubuntu: `apt-get install nodejs npm`) and run "
    f"`npm ci --prefix {RUNNER_DIR}` (or `make install`)."
)

_CHECKED: dict[str, str] = {}
_CHECK_LOCK = threading.Lock()


class NodeUnavailableError(PipelineError, RuntimeError):
    """Node is missing or too old, or the runner room is not installed."""


@dataclass(frozen=True)
class NodeCommand:
    argv: list[str]
    env: dict[str, str]
    cwd: str


def _node_binary() -> str | None:
    configured = os.environ.get(NODE_ENV, "").strip()
    if configured:
        return configured if os.path.isfile(configured) else shutil.which(configured)
    return shutil.which("node")


def _version_of(binary: str) -> str:
    try:
        done = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=30, check=False)
    except OSError as exc:
        raise NodeUnavailableError(
            f"TypeScript/JavaScript pipelines need Node.js {MIN_NODE_MAJOR} or later; {binary} cannot run ({exc}).",
            fix=INSTALL_FIX,
        ) from None
    return done.stdout.strip()


def check_node() -> str:
    """The Node version (``v20.20.2``) once Node >= 18 and the runner room's packages are present."""
    binary = _node_binary()
    if binary is None:
        raise NodeUnavailableError(
            f"TypeScript/JavaScript pipelines need Node.js {MIN_NODE_MAJOR} or later, and no `node` was found "
            f"on PATH{' or at ' + os.environ[NODE_ENV] if os.environ.get(NODE_ENV) else ''}.",
            fix=INSTALL_FIX,
        )
    with _CHECK_LOCK:
        version = _CHECKED.get(binary)
    if version is None:
        version = _version_of(binary)
        match = re.match(r"v?(\d+)\.", version)
        if match is None or int(match.group(1)) < MIN_NODE_MAJOR:
            raise NodeUnavailableError(
                f"TypeScript/JavaScript pipelines need Node.js {MIN_NODE_MAJOR} or later; {binary} is "
                f"{version or 'of unknown version'}.",
                fix=INSTALL_FIX,
            )
        with _CHECK_LOCK:
            _CHECKED[binary] = version
    if not (_TSX_LOADER.is_file() and _BRAINTRUST.is_file()):
        raise NodeUnavailableError(
            f"the Node runner's packages (braintrust, tsx) are not installed in {RUNNER_DIR / 'node_modules'}.",
            fix=f"Run `npm ci --prefix {RUNNER_DIR}` (or `make install`); it needs no network after that.",
        )
    return version


def node_command(file: str | os.PathLike[str]) -> NodeCommand:
    """The command that loads ``file`` in the runner (call :func:`check_node` first)."""
    binary = _node_binary() or "node"
    env = dict(os.environ)
    modules = os.fspath(RUNNER_DIR / "node_modules")
    env["NODE_PATH"] = modules + (os.pathsep + env["NODE_PATH"] if env.get("NODE_PATH") else "")
    env["BT_SKIP_DOWNLOAD"] = "1"  # never let the SDK fetch bt's binary
    env.setdefault("NODE_NO_WARNINGS", "1")
    argv = [binary, "--import", _TSX_LOADER.as_uri(), os.fspath(RUNNER_DIR / "runner.mjs"), os.path.abspath(file)]
    return NodeCommand(argv=argv, env=env, cwd=os.getcwd())
