"""One long-lived Node process running one pipeline file: the Python end of the JSONL protocol.

    runner = NodeRunner.start(file)          # spawns node, waits for {"op": "ready"}
    runner.listing                           # the ready message (pipelines, dagster options)
    future = runner.submit(pipeline, args, trace, loop)   # concurrent.futures.Future of the value
    runner.close()

Requests carry ids and any number may be in flight (the caller bounds them: TransformStream's
``max_concurrency``). A reader thread matches results to requests and answers the runner's
``trace.getSpans`` calls on the requesting transform's event loop, from that item's
:class:`engine.trace.PipelineTrace` (the spans the pull stage embedded, or its one cached fetch),
so a TS transform makes exactly the API requests a Python one does. A second thread sends the
process's stderr (the user's console output) to the ``pipelines_repo.node`` logger and keeps the
last lines for error reports. If the process dies, every pending and later request fails with
:class:`NodeRunnerCrashedError` naming the file, the exit code, the last stderr lines and a fix.
The protocol is documented in ``pipelines_repo/node/runner.mjs`` and docs/BT_COMPAT.md §8.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import itertools
import json
import logging
import os
import subprocess
import threading
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from .errors import FatalTransformError, PipelineError
from .node_env import node_command

__all__ = ["NodeLoadFailedError", "NodeRunner", "NodeRunnerCrashedError", "NodeTransformError"]

log = logging.getLogger("pipelines_repo.node")
START_TIMEOUT_ENV = "BT_DAGSTER_NODE_START_TIMEOUT"
_STDERR_LINES = 20


class NodeRunnerCrashedError(FatalTransformError):
    """The Node process running a pipeline file exited or stopped answering."""


class NodeLoadFailedError(PipelineError, RuntimeError):
    """The pipeline file failed to load in Node (``message``, ``name`` and ``stack`` from JS)."""

    def __init__(self, cause: str, *, path: Path, name: str, message: str, stack: str):
        super().__init__(cause, path=path)
        self.js_name, self.js_message, self.js_stack = name, message, stack


class NodeTransformError(RuntimeError):
    """A TS/JS transform threw; ``str()`` is ``"<JS error name>: <message> (at <file:line:col>)"``."""

    def __init__(self, name: str, message: str, stack: str, file: Path):
        where = next((line.strip() for line in stack.splitlines() if os.fspath(file) in line), "")
        super().__init__(f"{name}: {message}" + (f" ({where})" if where else ""))
        self.stack = stack


@dataclass
class _Request:
    future: concurrent.futures.Future[Any]
    trace: Any
    loop: asyncio.AbstractEventLoop | None


class NodeRunner:
    """A started runner process for ``file`` (see module doc). Thread-safe."""

    def __init__(self, file: Path, process: subprocess.Popen[bytes]):
        self.file = file
        self.listing: dict[str, Any] = {}
        self._process = process
        self._write_lock = threading.Lock()
        self._lock = threading.Lock()
        self._requests: dict[int, _Request] = {}
        self._ids = itertools.count(1)
        self._stderr: deque[str] = deque(maxlen=_STDERR_LINES)
        self._ready: concurrent.futures.Future[dict[str, Any]] = concurrent.futures.Future()
        self._dead: NodeRunnerCrashedError | None = None
        self._closing = False
        self._stderr_done = threading.Event()
        name = file.name
        threading.Thread(target=self._read_stderr, name=f"bt-node-stderr[{name}]", daemon=True).start()
        threading.Thread(target=self._read_stdout, name=f"bt-node-stdout[{name}]", daemon=True).start()

    @classmethod
    def start(cls, file: str | os.PathLike[str], *, timeout: float | None = None) -> NodeRunner:
        """Spawn the runner for ``file`` and wait until it listed its pipelines.

        Raises :class:`NodeLoadFailedError` when the file fails to import, and
        :class:`NodeRunnerCrashedError` when the process dies or is not ready within ``timeout``.
        """
        path = Path(os.path.abspath(file))
        command = node_command(path)
        process = subprocess.Popen(  # noqa: S603 - argv built from our own paths
            command.argv,
            cwd=command.cwd,
            env=command.env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        runner = cls(path, process)
        wait = timeout if timeout is not None else float(os.environ.get(START_TIMEOUT_ENV) or 120)
        try:
            runner.listing = runner._ready.result(timeout=wait)
        except concurrent.futures.TimeoutError:
            runner.close()
            raise NodeRunnerCrashedError(
                f"the Node runner did not list the file's pipelines within {wait:.0f} s.",
                path=path,
                fix=f"Check that module-level code finishes quickly (raise {START_TIMEOUT_ENV} if it must be slow).",
            ) from None
        except BaseException:
            runner.close()
            raise
        return runner

    # -- requests -----------------------------------------------------------------------------
    @property
    def alive(self) -> bool:
        return self._dead is None and self._process.poll() is None

    def submit(
        self, pipeline: str, args: dict[str, Any], trace: Any, loop: asyncio.AbstractEventLoop | None
    ) -> concurrent.futures.Future[Any]:
        """Send one transform request; the future resolves to the transform's (JSON) return value."""
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        req = next(self._ids)
        config = trace.get_configuration() if trace is not None else {}
        with self._lock:
            if self._dead is not None:
                raise self._dead
            self._requests[req] = _Request(future=future, trace=trace, loop=loop)
        self._send({"op": "transform", "req": req, "pipeline": pipeline, "args": args, "trace": config})
        future.add_done_callback(lambda _: self._forget(req))
        return future

    def _forget(self, req: int) -> None:
        with self._lock:
            self._requests.pop(req, None)

    def _send(self, message: dict[str, Any]) -> None:
        line = (json.dumps(message, ensure_ascii=False, default=str, separators=(",", ":")) + "\n").encode("utf-8")
        stdin = self._process.stdin
        assert stdin is not None
        try:
            with self._write_lock:
                stdin.write(line)
                stdin.flush()
        except (BrokenPipeError, OSError, ValueError):
            self._crashed()

    def close(self) -> None:
        """Ask the process to exit (stdin closed), then kill it if it lingers."""
        self._closing = True
        try:
            with self._write_lock:
                if self._process.stdin is not None:
                    self._process.stdin.close()
        except OSError:
            pass
        try:
            self._process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait(timeout=5)

    # -- reader threads -----------------------------------------------------------------------
    def _read_stderr(self) -> None:
        stream: IO[bytes] | None = self._process.stderr
        assert stream is not None
        for raw in stream:
            line = raw.decode("utf-8", errors="replace").rstrip("\n")
            self._stderr.append(line)
            log.info("[%s] %s", self.file.name, line)
        self._stderr_done.set()

    def _read_stdout(self) -> None:
        stream: IO[bytes] | None = self._process.stdout
        assert stream is not None
        for raw in stream:
            try:
                message = json.loads(raw)
            except ValueError:
                message = None
            if not isinstance(message, dict) or "op" not in message:
                # a write that bypassed the runner's stdout redirect (e.g. fs.writeSync(1, ...))
                log.info("[%s] %s", self.file.name, raw.decode("utf-8", errors="replace").rstrip())
                continue
            try:
                self._dispatch(message)
            except Exception:  # noqa: BLE001 - a bad message must not kill the reader
                log.exception("[%s] bad runner message: %.200r", self.file.name, raw)
        self._crashed()

    def _dispatch(self, message: dict[str, Any]) -> None:
        op = message["op"]
        if op == "ready":
            self._ready.set_result(message)
        elif op == "fatal":
            self._ready.set_exception(self._load_failure(message))
        elif op in ("result", "error"):
            with self._lock:
                request = self._requests.get(message.get("req"))
            if request is None or request.future.done():
                return
            if op == "result":
                request.future.set_result(message.get("value"))
            else:
                request.future.set_exception(
                    NodeTransformError(message.get("name") or "Error", message.get("message") or "", message.get("stack") or "", self.file)
                )
        elif op == "call":
            self._answer(message)

    def _load_failure(self, message: dict[str, Any]) -> NodeLoadFailedError:
        name, text, stack = message.get("name") or "Error", message.get("message") or "", message.get("stack") or ""
        return NodeLoadFailedError(f"{name}: {text}", path=self.file, name=name, message=text, stack=stack)

    # -- trace callbacks ----------------------------------------------------------------------
    def _answer(self, message: dict[str, Any]) -> None:
        call = message.get("call")
        with self._lock:
            request = self._requests.get(message.get("req"))
        if request is None or request.loop is None or request.loop.is_closed():
            self._send({"op": "reply", "call": call, "error": "the transform request is no longer pending"})
            return
        asyncio.run_coroutine_threadsafe(self._reply_spans(call, request.trace, message), request.loop)

    async def _reply_spans(self, call: Any, trace: Any, message: dict[str, Any]) -> None:
        try:
            if message.get("method") != "getSpans":
                raise ValueError(f"unknown trace method {message.get('method')!r}")
            span_type = message.get("spanType")
            include = bool(message.get("includeScorers"))
            if hasattr(trace, "span_rows"):
                value = await trace.span_rows(span_type, include_scorers=include)
            else:  # any other Trace implementation
                value = [getattr(s, "to_dict", lambda s=s: s)() for s in await trace.get_spans(span_type, include_scorers=include)]
            self._send({"op": "reply", "call": call, "value": value})
        except Exception as exc:  # noqa: BLE001 - the JS caller gets the error
            self._send({"op": "reply", "call": call, "error": f"{type(exc).__name__}: {exc}"})

    # -- death ----------------------------------------------------------------------------------
    def _crashed(self) -> None:
        with self._lock:
            if self._dead is not None:
                return
        code = self._process.wait()
        self._stderr_done.wait(timeout=2)
        tail = " | ".join(line for line in self._stderr if line.strip())[-1500:]
        how = f"was killed by signal {-code}" if code < 0 else f"exited with code {code}"
        error = NodeRunnerCrashedError(
            f"the Node process running this pipeline file {how}"
            + (" while it was being closed." if self._closing else ".")
            + (f" Last stderr: {tail}" if tail else ""),
            path=self.file,
            fix="Fix the cause shown in its stderr (an uncaught exception or unhandled rejection outside the "
            "transform, process.exit(), or running out of memory: lower max_concurrency or set "
            "NODE_OPTIONS=--max-old-space-size=...), then rerun; the next stage starts a fresh process.",
        )
        with self._lock:
            self._dead = error
            pending = list(self._requests.values())
            self._requests.clear()
        if not self._ready.done():
            self._ready.set_exception(error)
        for request in pending:
            if not request.future.done():
                request.future.set_exception(error)
