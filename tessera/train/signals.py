"""Why a run stops early: SIGTERM (a scheduler's preemption) or SIGINT (Ctrl-C) ask it to stop at the
next step, or its steps keep going non-finite.

The loop then writes a checkpoint and leaves; a second signal falls back to the default behaviour,
so a user can still force a stop.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType


class NonFiniteTraining(RuntimeError):
    """Too many optimizer steps had a non-finite loss or gradient; the last good checkpoint is kept."""


class StopRequested(Exception):
    """Raised by the loop after it saved its state because a signal asked it to stop."""

    def __init__(self, signum: int, step: int) -> None:
        super().__init__(f"stopped by {signal.Signals(signum).name} at step {step}; the checkpoint is written")
        self.signum = signum
        self.step = step


class StopSignals:
    """Context manager that records the first SIGTERM/SIGINT instead of dying on it."""

    SIGNALS = (signal.SIGTERM, signal.SIGINT)

    def __init__(self) -> None:
        self.signum: int | None = None
        self._previous: dict[int, object] = {}

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.signum = signum
        for sig in self.SIGNALS:  # a second signal acts as usual
            signal.signal(sig, self._previous.get(sig, signal.SIG_DFL))

    def __enter__(self) -> "StopSignals":
        if threading.current_thread() is threading.main_thread():
            for sig in self.SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    @property
    def requested(self) -> bool:
        return self.signum is not None
