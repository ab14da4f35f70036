"""Typed corrections: a person's lines of text, scripted or read from stdin, as `Correction`s.

`TypedCorrector` is the `LiveCorrector` behind `corrigible run --correct TEXT` and
`--interactive`. Every line goes through one thread-safe queue, whoever wrote it (the script at
start-up, or a reader thread on stdin), so the console can later feed the same queue. The
`CorrectionLoop` takes lines only at points where it can act on them:

* before each object skill (`before_skill`): lines that arrived while the previous skill ran;
* when a skill fails (`on_failure`): in interactive mode the loop waits, up to `timeout_s`, for
  the person's line; a refused line (empty, gibberish, an object not in the scene) is answered
  and the wait goes on;
* while paused (`while_paused`): until "resume" or "stop"; the end of input stops the run.

Scripted lines are delivered one per point, in order, so `--correct A --correct B` gives A at
the first point and B at the next; interactive lines are all taken at the next point, since a
person who typed two lines during a skill meant both. A line the `Correction` record rejects
(empty, over-long, control characters) is answered here and never reaches the loop. Every line
gets exactly one reply, printed on one line and kept in `log` for the result file.
"""

from __future__ import annotations

import contextlib
import queue
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TextIO

from corrigible.boundary import escape
from corrigible.corrections.correction import Correction, CorrectionSource
from corrigible.corrections.onthefly import AppliedCorrection
from corrigible.errors import ConfigError, InvalidCorrectionError
from corrigible.policies.robot_api import RobotAPI
from corrigible.policies.skills.specs import SKILLS

_SHOWN_CHARS = 80  # a refused paste is shown cut to this many characters


def _stdout(line: str) -> None:
    print(line, flush=True)


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _escaping(write: Callable[[str], None]) -> Callable[[str], None]:
    """`write`, given each line with its control characters escaped (`boundary.escape`)."""
    return lambda line: write(escape(line))


def shown(text: str) -> str:
    """The text as a safe one-line quote: repr() escapes control characters, long text is cut."""
    return repr(text if len(text) <= _SHOWN_CHARS else text[: _SHOWN_CHARS - 3] + "...")


class TypedCorrector:
    """A person typing corrections, fed through a thread-safe queue of lines.

    Args:
        texts: scripted lines (`--correct`), queued at once; delivered one per point. A line
            may be a (text, source) pair, e.g. one transcribed from speech.
        interactive: more lines will come from `read_from` (stdin); without it the input ends
            after `texts`.
        timeout_s: how long a failed skill waits for the person's line (interactive only), s.
        reply: where the one-line replies go (default: stdout).
        prompt: where prompts and the running API calls go in interactive mode (default:
            stderr, so stdout stays replies and results).

    Raises:
        ConfigError: `timeout_s` is not > 0.
    """

    asks_again = True  # a refused line on a failure: wait for the next one

    def __init__(
        self,
        texts: Iterable[str | tuple[str, CorrectionSource]] = (),
        *,
        interactive: bool = False,
        timeout_s: float = 60.0,
        reply: Callable[[str], None] | None = None,
        prompt: Callable[[str], None] | None = None,
    ) -> None:
        if not timeout_s > 0:
            raise ConfigError(
                f"TypedCorrector.timeout_s must be > 0 s, got {timeout_s!r}; give how long a "
                "failed skill may wait for a typed line, e.g. 60"
            )
        self.interactive = interactive
        self.timeout_s = float(timeout_s)
        self.log: list[dict[str, Any]] = []  # one entry per line, with its reply
        # Every line goes out escaped (a typed ESC, bell or CR is shown, never acted on), to
        # whichever channel: replies quote the person's text and messages that name it.
        self._reply = _escaping(reply or _stdout)
        self._prompt = _escaping(prompt or _stderr)
        self._per_point = None if interactive else 1
        # (text, sim time it arrived, source) or None: the end of input.
        self._queue: queue.Queue[tuple[str, float, CorrectionSource] | None] = queue.Queue()
        self._ended = False  # the end-of-input marker was taken (main thread only)
        self._api: RobotAPI | None = None
        for item in texts:
            text, source = (item, "typed") if isinstance(item, str) else item
            self.put(text, source)
        if not interactive:
            self.close()

    # -- feeding (any thread) ------------------------------------------------------------------
    def put(self, text: str, source: CorrectionSource = "typed") -> None:
        """Queues one line (thread-safe); it is validated when it is taken.

        Args:
            text: the line as typed (or transcribed).
            source: where it came from ("typed", "spoken", ...), kept on its `Correction`.
        """
        api = self._api
        arrived = float(api.env.backend.time) if api is not None else 0.0
        self._queue.put((text, arrived, source))

    def close(self) -> None:
        """Marks the end of input (thread-safe): no more lines will come."""
        self._queue.put(None)

    def read_from(self, stream: TextIO) -> threading.Thread:
        """Starts a daemon thread that queues each line of `stream` and closes at EOF.

        The thread is a daemon because a terminal's `readline` cannot be interrupted: when the
        run ends first, the process must still exit.
        """
        with contextlib.suppress(AttributeError, ValueError):
            stream.reconfigure(errors="replace")  # type: ignore[attr-defined]

        def pump() -> None:
            try:
                for line in iter(stream.readline, ""):
                    self.put(line.rstrip("\r\n"))
            except (OSError, ValueError):  # stdin closed under us: same as EOF
                pass
            finally:
                self.close()

        thread = threading.Thread(target=pump, name="typed-corrections", daemon=True)
        thread.start()
        return thread

    # -- taking (the loop's thread) --------------------------------------------------------------
    def _get(self, timeout: float | None) -> tuple[str, float, CorrectionSource] | None:
        """The next line; None when none came within `timeout` (0: do not wait) or input ended."""
        if self._ended:
            return None
        try:
            item = self._queue.get(timeout=timeout) if timeout != 0 else self._queue.get_nowait()
        except queue.Empty:
            return None
        if item is None:
            self._ended = True
        return item

    def _correction(
        self, item: tuple[str, float, CorrectionSource], episode: str
    ) -> Correction | None:
        """The line as a `Correction`, or None after answering why it cannot be one."""
        text, arrived, source = item
        try:
            return Correction(text=text, time=arrived, episode=episode, source=source)
        except InvalidCorrectionError as exc:
            self._answer(text, arrived, "refused", f"refused: {str(exc).rstrip('.')}")
            return None

    def _wait(self, episode: str, timeout: float | None) -> Correction | None:
        """The next valid correction within `timeout` s (None: no limit, 0: only queued ones)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            item = self._get(0 if timeout == 0 else left)
            if item is None:
                return None
            correction = self._correction(item, episode)
            if correction is not None:
                return correction

    @property
    def has_ended(self) -> bool:
        """True once the end of input was reached (no line will ever come again)."""
        return self._ended

    # -- the corrector interface (see corrections.onthefly.LiveCorrector) -----------------------
    def watch(self, api: RobotAPI) -> None:
        """Keeps the API for arrival times; interactive mode shows each skill call as it starts."""
        self._api = api
        if self.interactive:

            def show(name: str, call: dict[str, Any]) -> None:
                if name in SKILLS:  # skill calls, not perception queries
                    args = ", ".join(repr(a) for a in call["args"])
                    self._prompt(f"> {name}({args})")

            api.hooks.append(show)

    def before_skill(
        self, skill: str, obj: str, api: RobotAPI, *, episode: str
    ) -> Iterator[Correction]:
        """The lines that arrived since the last skill, taken one by one as the loop asks."""
        taken = 0
        while self._per_point is None or taken < self._per_point:
            correction = self._wait(episode, timeout=0)
            if correction is None:
                return
            taken += 1
            yield correction

    def before_place(
        self, obj: str, target: Any, api: RobotAPI, *, episode: str
    ) -> Correction | None:
        """Nothing: typed lines about a placement were already taken by `before_skill`."""
        return None

    def on_failure(
        self,
        skill: str,
        obj: str | None,
        message: str,
        api: RobotAPI,
        *,
        episode: str,
        target: Any = None,
    ) -> Correction | None:
        """The next line; interactive mode waits up to `timeout_s` for the person to type it."""
        if not self.interactive:
            return self._wait(episode, timeout=0)
        if not self._ended:
            self._prompt(
                f"! {skill} failed ({message}); type a correction "
                f"(waiting up to {self.timeout_s:g} s; Ctrl-D: none)"
            )
        correction = self._wait(episode, timeout=self.timeout_s)
        if correction is None:
            why = "input ended" if self._ended else f"no correction within {self.timeout_s:g} s"
            self._prompt(f"! {why}; the {skill} stays failed")
        return correction

    def while_paused(self, api: RobotAPI, *, episode: str) -> Correction | None:
        """Waits (without a time limit in interactive mode) for the line that ends the pause."""
        return self._wait(episode, timeout=None if self.interactive else 0)

    def on_reply(self, record: AppliedCorrection) -> None:
        """Prints the loop's one-line reply and keeps it for the result file."""
        self.log.append(record.to_dict())
        self._reply(f"[correction] {shown(record.correction.text)}: {record.reply}")

    def notify(self, message: str) -> None:
        """Prints a message about the run that no single line caused."""
        self._reply(f"[correction] {message}")

    def finish(self) -> None:
        """Answers the lines no point took (they came after the last skill); changes nothing."""
        while (item := self._get(0)) is not None:
            text, arrived, _source = item
            try:
                Correction(text=text, time=arrived, episode="-", source="typed")
            except InvalidCorrectionError as exc:
                self._answer(text, arrived, "refused", f"refused: {str(exc).rstrip('.')}")
                continue
            self._answer(
                text, arrived, "unused", "arrived after the last skill, so nothing could take it"
            )

    def _answer(self, text: str, arrived: float, status: str, reply: str) -> None:
        """Replies to a line the loop never saw (rejected here, or never taken)."""
        if not reply.endswith("nothing changed"):
            reply = f"{reply}; nothing changed"
        entry = {
            "text": text,
            "source": "typed",
            "time": arrived,
            "label": None,
            "skill": None,
            "obj": None,
            "effects": [],
            "params_after": {},
            "target_before": None,
            "target_after": None,
            "latency_s": None,
            "applied": False,
            "status": status,
            "reply": reply,
            "when": None,
            "control": None,
        }
        self.log.append(entry)
        if self._api is not None:
            self._api.env.trace.emit(
                "correction.reply", text=text, status=status, label=None, reply=reply
            )
        self._reply(f"[correction] {shown(text)}: {reply}")
