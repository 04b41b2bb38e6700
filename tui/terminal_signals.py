"""Every way out restores the terminal: SIGHUP and SIGTERM end the app through App.exit().

Textual restores the terminal (alternate screen off, mouse tracking off, cursor shown) when the
app exits normally or after an exception; a signal's default action kills the process before
it can. Here SIGHUP (the terminal or SSH link closed, `kill -HUP`) and SIGTERM ask the app to
exit instead, as `q` would but without the questions: training runs are separate processes and
keep going.
"""

from __future__ import annotations

import asyncio
import signal
from typing import Any

EXIT_SIGNALS = (signal.SIGHUP, signal.SIGTERM)


def install(app: Any) -> None:
    """Make SIGHUP and SIGTERM exit `app` cleanly (from its event loop)."""
    loop = asyncio.get_running_loop()
    for signum in EXIT_SIGNALS:
        loop.add_signal_handler(signum, _exit, app, signum)


def _exit(app: Any, signum: int) -> None:
    app.exit(return_code=128 + signum)
