"""The app's side of the warm generate worker (engine/generate/worker.py has the protocol).

One `python -m engine generate-worker` process, started on the first request through the
engine's child environment and kept while the app runs: the pipeline stays loaded between
prompts. It goes away after `idle_timeout()` seconds without a request (it ends itself), when
the app quits (`close`, also at interpreter exit), and when the app dies (its stdin closes).
A worker that has gone is started again by the next request; a request it never accepted (it
was ending when the request came) is sent again to the new one.

Torch-free and Textual-free: a reader thread turns the worker's stdout lines into messages on a
queue; the Generate screen's follow thread takes them with `next_message`.
"""

from __future__ import annotations

import atexit
import json
import os
import queue
import subprocess
import sys
import threading
import weakref
from collections import deque
from typing import Any

from tui.child_process import stop_child

__all__ = ["IDLE_ENV", "IDLE_S", "GenerateWorker", "idle_timeout"]

IDLE_S = 300.0  # 5 minutes without a request: the worker frees the model and ends
IDLE_ENV = "DREAMBOOTH_TUI_GENERATE_IDLE_S"
STOP_GRACE_S = 3.0

_LIVE: weakref.WeakSet[GenerateWorker] = weakref.WeakSet()


def idle_timeout() -> float:
    """Seconds a worker waits for the next request: $DREAMBOOTH_TUI_GENERATE_IDLE_S, else 300."""
    try:
        value = float(os.environ.get(IDLE_ENV, IDLE_S))
    except ValueError:
        return IDLE_S
    return value if value > 0 else IDLE_S


class GenerateWorker:
    """The warm worker process: `submit` a generate command line, read its answers."""

    def __init__(self, idle_s: float | None = None) -> None:
        self.idle_s = idle_timeout() if idle_s is None else idle_s
        self.messages: queue.Queue[dict[str, Any]] = queue.Queue()
        self.proc: subprocess.Popen[str] | None = None
        self.stderr_tail: deque[str] = deque(maxlen=40)
        self._lock = threading.Lock()
        self._next_id = 0
        self._pending: dict[str, Any] | None = None  # the request in flight, until `done`
        self._resent = False
        _LIVE.add(self)

    # -- process --------------------------------------------------------------------------------
    @property
    def pid(self) -> int | None:
        proc = self.proc
        return proc.pid if proc is not None and proc.poll() is None else None

    def command(self) -> list[str]:
        """The worker's argv: `python -m engine generate-worker --idle-timeout S`."""
        idle = f"{self.idle_s:g}"
        return [sys.executable, "-m", "engine", "generate-worker", "--idle-timeout", idle]

    def _start(self) -> subprocess.Popen[str]:
        from tui.engine_client import engine_env

        proc = subprocess.Popen(
            self.command(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=engine_env(),
            text=True,
            encoding="utf-8",
            errors="replace",
            bufsize=1,
            close_fds=True,
        )
        self.proc = proc
        for target, stream in ((self._read_replies, proc.stdout), (self._read_stderr, proc.stderr)):
            thread = threading.Thread(target=target, args=(proc, stream), daemon=True)
            thread.start()
        return proc

    def _read_stderr(self, proc: subprocess.Popen[str], stream: Any) -> None:
        for line in stream:
            self.stderr_tail.append(line.rstrip("\n"))

    def _read_replies(self, proc: subprocess.Popen[str], stream: Any) -> None:
        for line in stream:
            try:
                message = json.loads(line)
            except ValueError:
                continue
            if not isinstance(message, dict):
                continue
            with self._lock:
                pending = self._pending
                if pending is not None and message.get("id") == pending["id"]:
                    if message.get("type") == "accepted":
                        pending["accepted"] = True
                    elif message.get("type") == "done":
                        self._pending = None
            self.messages.put(message)
        code = proc.wait()
        with self._lock:
            if self.proc is not proc:
                return
            self.proc = None
            pending = self._pending
            if pending is not None and not pending["accepted"] and not self._resent:
                self._resent = True  # it was ending (idle) as the request came: a new one
                try:
                    self._send(pending)
                    return
                except OSError:
                    pass
            self._pending = None
        self.messages.put({"type": "exit", "code": code, "id": pending and pending["id"]})

    def _send(self, request: dict[str, Any]) -> None:
        """Write `request` to the worker (started when there is none). Caller holds the lock."""
        proc = self.proc if self.proc is not None and self.proc.poll() is None else self._start()
        assert proc.stdin is not None
        line = {"type": "generate", "id": request["id"], "argv": request["argv"]}
        proc.stdin.write(json.dumps(line, ensure_ascii=False) + "\n")
        proc.stdin.flush()

    # -- requests -------------------------------------------------------------------------------
    def submit(self, argv: list[str]) -> int:
        """Send a request (the `generate` arguments, --output-dir included); its id. Raises
        OSError where no worker can be started."""
        with self._lock:
            self._next_id += 1
            request = {"id": self._next_id, "argv": list(argv), "accepted": False}
            self._pending, self._resent = request, False
            try:
                self._send(request)
            except (BrokenPipeError, ValueError):  # it ended just now: a new one
                self.proc = None
                self._send(request)
            return request["id"]

    def cancel(self, request_id: int) -> None:
        """Ask the worker to stop `request_id` after the current denoising step."""
        with self._lock:
            proc = self.proc
            if proc is None or proc.stdin is None:
                return
            try:
                proc.stdin.write(json.dumps({"type": "cancel", "id": request_id}) + "\n")
                proc.stdin.flush()
            except (OSError, ValueError):
                pass

    def next_message(self, timeout: float) -> dict[str, Any] | None:
        try:
            return self.messages.get(timeout=timeout)
        except queue.Empty:
            return None

    def stop(self) -> None:
        """End the worker now (SIGTERM, SIGKILL after a grace); a request in flight gets an
        `exit` message. The next request starts a new worker."""
        with self._lock:
            proc, pending = self.proc, self._pending
            self.proc = self._pending = None  # its reader thread now ends without a word
        if proc is None:
            return
        try:
            if proc.stdin is not None:
                proc.stdin.close()
        except (OSError, ValueError):
            pass
        stop_child(proc, STOP_GRACE_S)
        if pending is not None:
            self.messages.put({"type": "exit", "code": proc.returncode, "id": pending["id"]})

    close = stop  # the app quits: the worker goes with it


@atexit.register
def _close_all() -> None:
    """Every way out of the app that runs Python's exit (q, SIGHUP, SIGTERM, an exception)."""
    for worker in list(_LIVE):
        worker.stop()
