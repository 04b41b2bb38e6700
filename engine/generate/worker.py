"""The warm generate worker, `python -m engine generate-worker`: the app's one generation process.

It keeps the last pipeline loaded between requests, so the second prompt with the same model
does not load it again; a request for another model, LoRA or checkpoint frees the old pipeline
and loads the new one in the same process. Each request is a `generate` command line and writes
what `generate` writes (images, sidecars, grid.png, events.jsonl; generate.log beside them).

Protocol: JSON Lines. App -> worker, on stdin:

    {"type": "generate", "id": N, "argv": [the generate arguments, --output-dir DIR included]}
    {"type": "cancel", "id": N}     stop request N after the current denoising step
    {"type": "quit"}

Worker -> app, on stdout (the process's own stdout; anything printed goes to the log instead):

    {"type": "ready", "pid": P}
    {"type": "accepted", "id": N}   the request is being handled: a `done` follows
    {"type": "loading", "id": N, "model": M} then {"type": "loaded", "id": N, "model": M,
        "seconds": S}               only when the pipeline is (re)loaded
    {"type": "done", "id": N, "status": "completed" | "stopped" | "failed", "images": [...],
        "error": null | {"kind", "message", "hint"}, "seconds": S}
    {"type": "bye", "reason": "idle" | "eof" | "quit" | "parent"}

It exits after ``idle_timeout`` seconds without a request, when stdin closes (the app quit or
died: nothing else holds the pipe), or when its parent process is gone. A request that was
never `accepted` was not handled: the app sends it again to a new worker.
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import sys
import threading
import time
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from engine.generate.errors import GenerateCancelled, GenerateError
from engine.generate.source import Source
from engine.redact import redact

GENERATE_LOG = "generate.log"
EXIT_GRACE_S = 5.0  # stdin closed mid-load: the process ends after this, loaded or not


class Channel:
    """The protocol's output: one JSON object per line, whole lines from any thread."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream
        self.lock = threading.Lock()

    def say(self, kind: str, **fields: Any) -> None:
        line = redact(json.dumps({"type": kind, **fields}, ensure_ascii=False))
        with self.lock:
            try:
                self.stream.write(line + "\n")
                self.stream.flush()
            except (BrokenPipeError, ValueError):  # the app is gone: nobody to answer
                os._exit(0)


class Inbox:
    """Requests from the reader thread, the cancelled ids, and why the worker should end."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.requests: deque[dict[str, Any]] = deque()
        self.cancelled: set[Any] = set()
        self.closed: str | None = None

    def put(self, message: dict[str, Any]) -> None:
        with self.cond:
            kind = message.get("type")
            if kind == "generate" and self.closed is None:
                self.requests.append(message)
            elif kind == "cancel":
                self.cancelled.add(message.get("id"))
            elif kind == "quit":
                self.close("quit")
            self.cond.notify_all()

    def close(self, reason: str) -> None:
        with self.cond:
            if self.closed is None:
                self.closed = reason
            self.cond.notify_all()

    def next(self, idle_timeout: float, parent: int) -> tuple[dict[str, Any] | None, str]:
        """The next request, or (None, why the worker ends)."""
        deadline = time.monotonic() + idle_timeout
        with self.cond:
            while True:
                if self.closed is not None:
                    return None, self.closed
                if self.requests:
                    return self.requests.popleft(), ""
                if os.getppid() != parent:
                    self.closed = "parent"
                elif time.monotonic() >= deadline:
                    self.closed = "idle"  # from here on, requests are left for a new worker
                else:
                    self.cond.wait(min(1.0, max(0.01, deadline - time.monotonic())))

    def check(self, request_id: Any) -> None:
        """Raise GenerateCancelled where request `request_id` was cancelled or stdin closed."""
        if request_id in self.cancelled or self.closed in ("eof", "parent"):
            raise GenerateCancelled()


def read_requests(stdin: IO[str], inbox: Inbox) -> None:
    """The reader thread: stdin lines into the inbox; at EOF, the worker ends (promptly)."""
    for line in stdin:
        try:
            message = json.loads(line)
        except ValueError:
            continue
        if isinstance(message, dict):
            inbox.put(message)
    inbox.close("eof")
    timer = threading.Timer(EXIT_GRACE_S, os._exit, (0,))  # a load cannot be interrupted
    timer.daemon = True
    timer.start()


def _stamp(path: Path | None) -> tuple[str, float, int] | None:
    try:
        stat = path.stat() if path is not None else None
    except OSError:
        return None
    return None if stat is None else (str(path), stat.st_mtime, stat.st_size)


def source_key(source: Source, device: str, dtype: Any) -> tuple:
    """What makes two requests load the same pipeline (a LoRA or folder changed on disk: not)."""
    folder = Path(source.pipeline).expanduser() / "model_index.json"
    return (
        source.pipeline,
        _stamp(folder) if folder.exists() else None,
        _stamp(source.lora),
        str(source.checkpoint_dir),
        source.method,
        device,
        str(dtype),
    )


class PipelineCache:
    """The one loaded pipeline, kept while requests name the same source."""

    def __init__(self, channel: Channel) -> None:
        self.channel = channel
        self.request_id: Any = None
        self.key: tuple | None = None
        self.pipe: Any = None
        self.scheduler: Any = None

    def get(self, source: Source, device: str, dtype: Any) -> Any:
        from engine.generate.pipeline import load_source

        key = source_key(source, device, dtype)
        if self.pipe is not None and key == self.key:
            # the sampler as loaded: use_sampler builds the request's one from its config, as a
            # cold `generate` does, whatever the previous request used
            self.pipe.scheduler = self.scheduler
            return self.pipe
        self.free()
        self.channel.say("loading", id=self.request_id, model=source.model)
        start = time.monotonic()
        pipe = load_source(source, device, dtype)
        self.pipe, self.key, self.scheduler = pipe, key, pipe.scheduler
        seconds = round(time.monotonic() - start, 3)
        self.channel.say("loaded", id=self.request_id, model=source.model, seconds=seconds)
        return pipe

    def free(self) -> None:
        """Drop the pipeline and give its memory back (the GPU's cache too)."""
        self.pipe = self.key = self.scheduler = None
        gc.collect()
        release_gpu_cache()


def release_gpu_cache() -> None:
    torch = sys.modules.get("torch")  # not imported yet: nothing to give back
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()


@contextlib.contextmanager
def output_to(path: Path | None) -> Iterator[None]:
    """This process's stdout and stderr (library chatter, tracebacks) into `path` meanwhile."""
    if path is None:
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        os.close(fd)
        yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        os.close(saved[0])
        os.close(saved[1])


def error_fields(exc: GenerateError) -> dict[str, str]:
    return {"kind": exc.kind, "message": exc.message, "hint": exc.hint}


def handle(request: dict[str, Any], cache: PipelineCache, channel: Channel, inbox: Inbox) -> None:
    """One request, answered with `done` whatever happens."""
    from engine.cli_generate import options_from_args, parse_request
    from engine.generate.run import generate

    rid = request.get("id")
    start = time.monotonic()
    cache.request_id = rid

    def done(status: str, images: list[str], error: GenerateError | None = None) -> None:
        fields = error_fields(error) if error is not None else None
        seconds = round(time.monotonic() - start, 3)
        channel.say("done", id=rid, status=status, images=images, error=fields, seconds=seconds)

    argv = request.get("argv")
    try:
        if not isinstance(argv, list) or not all(isinstance(a, str) for a in argv):
            raise GenerateError("bad request: argv must be a list of strings", kind="config")
        opts = options_from_args(parse_request(argv))
        inbox.check(rid)
    except GenerateCancelled:
        done("stopped", [])
        return
    except GenerateError as exc:
        done("failed", [], exc)
        return
    log = opts.output_dir / GENERATE_LOG if opts.output_dir is not None else None
    with output_to(log):
        try:
            outputs = generate(opts, load=cache.get, interrupt=lambda: inbox.check(rid))
        except GenerateCancelled:
            done("stopped", [])
            return
        except GenerateError as exc:
            if exc.kind == "oom":
                release_gpu_cache()  # the pipeline stays; the failed call's memory goes
            print(f"error: {exc.line()}", file=sys.stderr)
            done("failed", [], exc)
            return
    done("completed", [str(p) for p in outputs])


def protocol_stream() -> IO[str]:
    """The protocol's own copy of stdout; fd 1 then points at stderr, so a library's print()
    can never put a stray line into the protocol."""
    fd = os.dup(1)
    os.dup2(2, 1)
    return os.fdopen(fd, "w", encoding="utf-8", buffering=1)


def serve(idle_timeout: float = 300.0, stdin: IO[str] | None = None) -> int:
    """Answer requests until idle, stdin closes, a quit request or the parent goes. Exit 0."""
    channel = Channel(protocol_stream())
    inbox = Inbox()
    parent = os.getppid()
    reader = threading.Thread(
        target=read_requests, args=(stdin or sys.stdin, inbox), name="requests", daemon=True
    )
    reader.start()
    channel.say("ready", pid=os.getpid())
    cache = PipelineCache(channel)
    while True:
        request, reason = inbox.next(idle_timeout, parent)
        if request is None:
            channel.say("bye", reason=reason)
            cache.free()
            return 0
        channel.say("accepted", id=request.get("id"))
        handle(request, cache, channel, inbox)
