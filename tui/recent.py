"""The config the user last worked with in each folder, so `dreambooth-tui` with no argument
opens it again (the demo's dreambooth-demo.yaml, a config saved under another name).

Kept in <DREAMBOOTH_TUI_CACHE or ~/.cache/dreambooth-tui>/recent-configs.json as
{absolute folder: absolute config path}; a config that no longer exists is ignored.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

MAX_FOLDERS = 200


def recent_file() -> Path:
    root = os.environ.get("DREAMBOOTH_TUI_CACHE") or Path.home() / ".cache" / "dreambooth-tui"
    return Path(root) / "recent-configs.json"


def _read() -> dict[str, str]:
    try:
        data = json.loads(recent_file().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def remember(config_path: Path, folder: Path | None = None) -> None:
    """Record `config_path` as the one last used in `folder` (default: the current one)."""
    folder = (folder or Path.cwd()).absolute()
    data = _read()
    data.pop(str(folder), None)
    data[str(folder)] = str(Path(config_path).absolute())
    data = dict(list(data.items())[-MAX_FOLDERS:])
    path = recent_file()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=1), encoding="utf-8")
        os.replace(tmp, path)
    except OSError:
        pass  # remembering is a convenience: never a reason to fail


def last_config(folder: Path | None = None) -> Path | None:
    """The config last used in `folder` (default: the current one), if it still exists."""
    folder = (folder or Path.cwd()).absolute()
    value = _read().get(str(folder))
    if value and Path(value).is_file():
        return Path(value)
    return None
