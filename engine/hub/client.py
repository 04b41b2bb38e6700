"""Talking to the Hub: the token, repo-id checks, one-line errors, and an upload with bounded requests.

The token comes from HF_TOKEN or the huggingface_hub login only. It is handed to HfApi and never
printed, logged, or written into a card, an event, a config or the run directory.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from engine import __version__
from engine.errors import DreamboothError

Log = Callable[[str], None]


class HubError(DreamboothError):
    """A push that cannot go on; ``str()`` is one line. ``exit_code``: 2 usage (kind "config"),
    1 run time (kind "network")."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        kind = "config" if exit_code == 2 else "network"
        super().__init__(message, kind=kind, exit_code=exit_code)


def get_token() -> str | None:
    """HF_TOKEN, else the token saved by `hf auth login`; None when there is neither."""
    from huggingface_hub import get_token as hub_token

    token = hub_token()
    return token.strip() if token and token.strip() else None


def require_token() -> str:
    token = get_token()
    if not token:
        raise HubError(
            "no Hugging Face token: set HF_TOKEN or run `hf auth login` "
            "(a token with write access, from https://huggingface.co/settings/tokens)"
        )
    return token


def check_repo_id(repo_id: str) -> None:
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    try:
        validate_repo_id(repo_id)
    except HFValidationError:
        raise HubError(
            f"'{repo_id}' is not a valid repo id; use NAMESPACE/NAME, e.g. you/sks-dog",
            exit_code=2,
        ) from None
    if "/" not in repo_id:
        raise HubError(
            f"'{repo_id}' has no namespace; use NAMESPACE/NAME, e.g. you/{repo_id}", exit_code=2
        )


def causes(exc: BaseException) -> list[BaseException]:
    """The exception and what caused it, outermost first (at most 10, no loops)."""
    chain: list[BaseException] = []
    e: BaseException | None = exc
    while e is not None and e not in chain and len(chain) < 10:
        chain.append(e)
        e = e.__cause__ or e.__context__
    return chain


def _transport_errors() -> tuple[type[BaseException], ...]:
    """Connection-level error classes of the HTTP clients huggingface_hub may use."""
    import importlib

    kinds: list[type[BaseException]] = [ConnectionError, TimeoutError]
    for name in ("httpx2", "httpx", "requests"):  # huggingface_hub 2.x: httpx2; 0.x: requests
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        for attr in ("TransportError", "ConnectionError", "Timeout"):
            kind = getattr(module, attr, None)
            if isinstance(kind, type) and issubclass(kind, BaseException):
                kinds.append(kind)
    return tuple(kinds)


def explain(exc: BaseException, repo_id: str, token: str | None = None) -> HubError:
    """One line for what went wrong talking to the Hub (the token is never part of it)."""
    from huggingface_hub.errors import (
        HfHubHTTPError,
        OfflineModeIsEnabled,
        RepositoryNotFoundError,
    )

    chain = causes(exc)

    def find(kind):
        return next((c for c in chain if isinstance(c, kind)), None)

    if find(OfflineModeIsEnabled):
        message = (
            "cannot reach the Hugging Face Hub: offline mode is on (HF_HUB_OFFLINE); "
            "unset it and check the network to push"
        )
    elif find(RepositoryNotFoundError):
        message = (
            f"repository '{repo_id}' not found (404), or the token cannot see it; check the "
            "id and that the namespace is your user or an organisation you belong to"
        )
    elif (http := find(HfHubHTTPError)) is not None:
        status = http.response.status_code if http.response is not None else None
        if status == 401:
            message = (
                "the Hugging Face token was rejected (401 unauthorized); set a valid HF_TOKEN "
                "or run `hf auth login`"
            )
        elif status == 403:
            message = (
                f"not permitted to write to '{repo_id}' (403 forbidden); use a token with "
                "write access to that namespace"
            )
        elif status == 404:
            message = (
                f"repository '{repo_id}' not found (404), or the token cannot see it; check "
                "the id and the namespace"
            )
        else:
            detail = (http.server_message or "").strip().splitlines()
            detail_text = f": {detail[0]}" if detail else ""
            message = f"the Hugging Face Hub refused the upload (HTTP {status}){detail_text}"
    elif (net := find(_transport_errors())) is not None:
        message = (
            "cannot reach the Hugging Face Hub (no network?): "
            f"{type(net).__name__}: {str(net).splitlines()[0] if str(net) else 'no response'}"
        )
    elif isinstance(exc, ValueError):  # e.g. the Hub rejected the card's metadata
        message = f"the upload was refused: {' '.join(str(exc).split())}"
    else:
        message = f"the upload failed: {type(exc).__name__}: {' '.join(str(exc).split())}"
    if token:
        message = message.replace(token, "***")
    return HubError(message)


TIMEOUT_ENV = "DREAMBOOTH_TUI_HUB_TIMEOUT"
DEFAULT_TIMEOUT_S = 120.0


def bound_requests() -> float:
    """Give every Hub request a timeout (huggingface_hub's client has none: a server that stops
    answering would hang a push forever). huggingface_hub retries 408/429/5xx answers, dropped
    connections and timeouts itself, 5 times over about 25 s; then the push fails in one line.
    Returns the timeout in seconds ($DREAMBOOTH_TUI_HUB_TIMEOUT, default 120)."""
    try:
        import httpx2
        from huggingface_hub import set_client_factory
        from huggingface_hub.utils._http import default_client_factory
    except ImportError:  # huggingface_hub < 1.0 (requests): its own per-call timeouts apply
        return 0.0
    try:
        seconds = float(os.environ.get(TIMEOUT_ENV) or DEFAULT_TIMEOUT_S)
    except ValueError:
        raise HubError(f"{TIMEOUT_ENV} must be a number of seconds", exit_code=2) from None

    def factory() -> httpx2.Client:
        client = default_client_factory()
        client.timeout = httpx2.Timeout(seconds, connect=min(seconds, 30.0))
        return client

    set_client_factory(factory)
    return seconds


def upload(folder: Path, repo_id: str, repo_type: str, private: bool, message: str, log: Log):
    """Create the repo (if missing) and upload ``folder`` to it in one commit (all or nothing);
    returns the repo URL only once that commit is accepted."""
    from huggingface_hub import HfApi

    token = require_token()
    bound_requests()
    api = HfApi(token=token, library_name="dreambooth-tui", library_version=__version__)
    try:
        url = api.create_repo(repo_id, repo_type=repo_type, private=private, exist_ok=True)
        log(f"uploading {count_files(folder)} files to {url} ...")
        api.upload_folder(
            folder_path=str(folder), repo_id=repo_id, repo_type=repo_type, commit_message=message
        )
    except HubError:
        raise
    except Exception as exc:
        raise explain(exc, repo_id, token) from None
    return str(url)


def count_files(folder: Path) -> int:
    return sum(1 for p in folder.rglob("*") if p.is_file())
