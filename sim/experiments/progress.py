"""Progress of long commands on stderr: a live bar on a terminal or in a notebook, log lines otherwise.

On a terminal and in Jupyter the bar is drawn by ``rich`` (it redraws its line whole, so no
stale characters are left behind; in a notebook it draws into an ipywidgets output, so
there it needs ``ipywidgets``: ``pip install 'capsim[notebooks]'``, else the log lines
below); it is refreshed by our own calls, with no thread of its own (workers are forked). Off a
terminal (a log file, CI, a pipe) there is no bar: a plain line every ``every`` seconds,
the last one, and while nothing has advanced a line a ``heartbeat`` apart, so a long run
shows it is alive. ``Progress(total, label)`` counts jobs; ``RunProgress(horizon)`` follows
one simulation through its simulated time (``capsim.run(..., progress=...)``).
"""
from __future__ import annotations

import sys
import time

__all__ = ["Progress", "RunProgress"]


def _live(stream) -> bool:
    """A terminal, or a notebook with ipywidgets: draw a live bar there."""
    from rich.console import Console
    console = Console(file=stream)
    if console.is_jupyter:
        try:
            import ipywidgets  # noqa: F401  (rich draws a notebook's bar into its Output widget)
        except ImportError:
            return False
        return True
    return console.is_terminal


class Progress:
    """``done/total`` jobs on stderr (see the module text); ``enabled=False`` prints nothing."""

    unit = "jobs"

    def __init__(self, total: float, label: str, stream=None, every: float = 10.0, enabled: bool = True,
                 heartbeat: float = 60.0):
        self.total, self.label, self.every, self.heartbeat = total, label, every, heartbeat
        self.enabled = enabled and total > 0
        self.stream = stream if stream is not None else sys.stderr
        self.done, self.t0, self._last = 0.0, time.monotonic(), -float("inf")
        self._bar = None
        self._live = self.enabled and _live(self.stream)

    # -- what callers say ---------------------------------------------------------------
    def update(self, n: float = 1) -> None:
        self.advance_to(self.done + n)

    def advance_to(self, done: float) -> None:
        self.done = min(done, self.total)
        if not self.enabled:
            return
        final = self.done >= self.total
        if self._live:
            self._draw(final)
        elif final or time.monotonic() - self._last >= self.every:
            self._log()

    def tick(self) -> None:
        """Between advances: refresh the bar, or log a heartbeat line when nothing was logged
        for ``heartbeat`` seconds (before the first job ends, a week-long run looks alive)."""
        if not self.enabled or self.done >= self.total:
            return
        if self._live:
            self._draw(False)
        elif time.monotonic() - max(self._last, self.t0) >= self.heartbeat:
            self._log()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None

    # -- drawing --------------------------------------------------------------------------
    def _draw(self, final: bool) -> None:
        if self._bar is None:
            from rich.console import Console
            from rich.progress import BarColumn, Progress as Bar, TextColumn, TimeElapsedColumn, TimeRemainingColumn
            self._bar = Bar(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[count]}"),
                            TimeElapsedColumn(), TextColumn("left"), TimeRemainingColumn(),
                            console=Console(file=self.stream), transient=False, auto_refresh=False)
            self._task = self._bar.add_task(self.label, total=self.total, count=self.count())
            self._bar.start()
        self._bar.update(self._task, completed=self.done, count=self.count(), refresh=True)
        if final:
            self.close()

    def _log(self) -> None:
        self._last = time.monotonic()
        self.stream.write(self.text(self._last) + "\n")
        self.stream.flush()

    def count(self) -> str:
        return f"{self.done:g}/{self.total:g} {self.unit}"

    def text(self, now: float) -> str:
        dt = now - self.t0
        text = f"{self.label}: {self.count()} ({100 * self.done / self.total:.0f}%), {dt:.1f} s"
        if 0 < self.done < self.total:
            text += f", ~{dt / self.done * (self.total - self.done):.0f} s left"
        return text


class RunProgress(Progress):
    """One simulation: simulated time against the horizon; call it as ``progress(t, horizon)``."""

    def __init__(self, horizon: float, label: str = "capsim run", **options):
        super().__init__(horizon, label, **options)

    def __call__(self, simulated: float, horizon: float) -> None:
        self.advance_to(simulated)

    def count(self) -> str:
        from capsim.models.units import human_duration
        return f"simulated {human_duration(round(self.done))} of {human_duration(self.total)}"
