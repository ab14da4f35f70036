"""Operator control of a running program: pause, resume and interrupt, from any thread."""

from __future__ import annotations

import threading

from corrigible.errors import SandboxInterrupted


class SandboxControl:
    """A thread-safe switch the caller flips while `run_program` runs in another thread.

    Pausing freezes the child process (SIGSTOP: the program stops between any two lines, even
    in a NumPy call) and the parent answers no API call until `resume()`. The wall-clock limit
    does not run while paused. Interrupting ends the run with error class `interrupted`: the
    pending or next API call raises inside the program, which gets
    `SandboxLimits.interrupt_grace_s` to unwind before it is killed.

    A skill running in the parent (inside an API call) pauses and stops only where it calls
    `checkpoint()`, e.g. between control steps; that is how "inside skills" works. The same
    checkpoint stops a skill that is still running when the run's wall-clock budget is spent:
    the executor calls `expire()` then, and `clear_expiry()` when the run has ended.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._paused = False
        self._interrupted = False
        self._reason = ""
        self._expired: str | None = None  # why the current run's time is up, else None

    @property
    def is_paused(self) -> bool:
        """True between `pause()` and `resume()`."""
        with self._cond:
            return self._paused

    @property
    def is_interrupted(self) -> bool:
        """True once `interrupt()` was called (it stays set)."""
        with self._cond:
            return self._interrupted

    @property
    def reason(self) -> str:
        """The text passed to `interrupt()`."""
        with self._cond:
            return self._reason

    def pause(self) -> None:
        """Freezes the program at its next opportunity (at once for the child process)."""
        with self._cond:
            self._paused = True
            self._cond.notify_all()

    def resume(self) -> None:
        """Lets a paused program continue."""
        with self._cond:
            self._paused = False
            self._cond.notify_all()

    def interrupt(self, reason: str = "interrupted by the operator") -> None:
        """Ends the run; also releases a pause so the program can unwind."""
        with self._cond:
            self._interrupted = True
            self._paused = False
            self._reason = reason
            self._cond.notify_all()

    def expire(self, reason: str) -> None:
        """Makes `checkpoint()` raise until `clear_expiry()`: the run's time is up.

        Unlike `interrupt()` this belongs to one run (the executor clears it when the run
        ends), does not mark the control as interrupted, and releases no pause.
        """
        with self._cond:
            self._expired = reason
            self._cond.notify_all()

    def clear_expiry(self) -> None:
        """Undoes `expire()` (the executor calls it when a run ends)."""
        with self._cond:
            self._expired = None

    def wait_for_change(self, timeout: float) -> None:
        """Blocks up to `timeout` seconds or until pause/resume/interrupt is called."""
        with self._cond:
            self._cond.wait(timeout)

    def checkpoint(self) -> None:
        """For skills: blocks while paused; raises SandboxInterrupted once interrupted.

        Raises:
            SandboxInterrupted: `interrupt()` was called, or the run's time is up (`expire()`).
        """
        with self._cond:
            while self._paused and not self._interrupted and self._expired is None:
                self._cond.wait(0.1)
            if self._interrupted:
                raise SandboxInterrupted(f"{self._reason}; the skill stopped at a checkpoint")
            if self._expired is not None:
                raise SandboxInterrupted(f"{self._expired}; the skill stopped at a checkpoint")
