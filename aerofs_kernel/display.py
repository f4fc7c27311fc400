"""Live progress for blocking calls: a widget in a notebook, a rich bar in a terminal, nothing otherwise."""

from __future__ import annotations

import sys
from typing import Any


def in_notebook() -> bool:
    """True inside a kernel with a frontend (widgets can render)."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    ip = get_ipython()
    return ip is not None and getattr(ip, "kernel", None) is not None


class NullDisplay:
    def update(self, snap: dict[str, Any]) -> None:
        pass

    def finish(self, state: str, message: str = "") -> None:
        pass


class WidgetDisplay:
    def __init__(self, description: str, on_cancel: Any = None) -> None:
        from IPython.display import display

        from aerofs_kernel.widgets import ProgressWidget

        self.widget = ProgressWidget(description=description, on_cancel=on_cancel)
        self.widget.state = "running"
        display(self.widget)

    def update(self, snap: dict[str, Any]) -> None:
        self.widget.update(snap)

    def finish(self, state: str, message: str = "") -> None:
        self.widget.state = state
        self.widget.message = message


def _human(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1024 or unit == "TB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return str(n)


class RichDisplay:
    """A rich progress bar on stderr: bytes, rate, ETA, inputs, errors, the current input."""

    def __init__(self, description: str, console: Any = None) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeRemainingColumn

        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TaskProgressColumn(),
            TextColumn("{task.fields[detail]}"),
            TimeRemainingColumn(),
            console=console or Console(stderr=True),
            transient=False,
        )
        self.task = self.progress.add_task(description, total=None, detail="")
        self.progress.start()

    def update(self, snap: dict[str, Any]) -> None:
        total = snap.get("bytes_total") or None
        detail = (
            f"{snap.get('inputs_done', 0)}/{snap.get('inputs_total', 0)} inputs · "
            f"{_human(snap.get('bytes_done', 0))} · {_human(snap.get('rate', 0.0))}/s · {snap.get('errors', 0)} errors"
        )
        self.progress.update(self.task, total=total, completed=snap.get("bytes_done", 0), detail=detail)

    def finish(self, state: str, message: str = "") -> None:
        if state == "succeeded":
            t = self.progress.tasks[0]
            self.progress.update(self.task, total=t.total or 1, completed=t.total or 1)
        self.progress.stop()


def make_display(description: str, mode: bool | str | None = None, on_cancel: Any = None) -> Any:
    """``mode``: None/True picks (notebook widget, terminal bar, else nothing); False: nothing;
    "widget"/"rich" force one."""
    if mode is False:
        return NullDisplay()
    if mode == "widget" or (mode in (None, True) and in_notebook()):
        try:
            return WidgetDisplay(description, on_cancel)
        except Exception:
            return NullDisplay()
    if mode == "rich" or (mode in (None, True) and sys.stderr.isatty()):
        return RichDisplay(description)
    return NullDisplay()
