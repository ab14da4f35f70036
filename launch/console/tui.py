"""The terminal console: a textual app over a `ConsoleSession`.

The screen shows the instruction, the program with the executing line marked, the skill
running, the trace tail, the knowledge entries in use and why, and the last correction's reply.
The input line at the bottom takes corrections at any time (Enter sends; a moving arm halts and
the skill is redone with the correction). Keys work while typing, so they are function keys:

    F5 pause / resume    F6 stop    Esc e-stop    F7 undo    F8 push-to-talk    F2 knowledge base

The knowledge-base screen lists the entries with their provenance; `e` edits the selected
entry's rule (Enter saves it as a superseding entry), `d` deletes it, Esc goes back.
"""

from __future__ import annotations

from collections.abc import Callable

from rich.text import Text
from textual.app import App, ComposeResult, ScreenStackError
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.css.query import NoMatches
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Input, Static

from corrigible.errors import CorrigibleError, DependencyNotInstalled
from corrigible.launch.console.driver import ConsoleSession, ConsoleState

Recorder = Callable[[], tuple[bytes, str]]  # push-to-talk: records one clip -> (audio, MIME)


def record_microphone(seconds: float = 4.0) -> tuple[bytes, str]:
    """Records `seconds` from the default microphone as 16 kHz mono WAV.

    Raises:
        DependencyNotInstalled: no `sounddevice` (pip install sounddevice) to reach a microphone.
    """
    try:
        import sounddevice  # type: ignore[import-not-found]
    except ImportError as exc:
        raise DependencyNotInstalled(
            "push-to-talk in the terminal needs a microphone through sounddevice "
            "(pip install sounddevice); or use the web console (corrigible console --web)"
        ) from exc
    import io
    import wave

    rate = 16000
    clip = sounddevice.rec(int(seconds * rate), samplerate=rate, channels=1, dtype="int16")
    sounddevice.wait()
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(clip.tobytes())
    return buf.getvalue(), "audio/wav"


def program_text(state: ConsoleState) -> Text:
    """The program with the executing line marked ("> ", reversed)."""
    if not state.program:
        return Text("(planning...)", style="dim")
    out = Text()
    for number, source in enumerate(state.program, start=1):
        if number > 1:
            out.append("\n")
        if number == state.line:
            out.append(f"> {number:2d} {source}", style="reverse")
        else:
            out.append(f"  {number:2d} {source}")
    return out


class KbScreen(Screen[None]):
    """The knowledge-base browser: entries, provenance, edit and delete."""

    BINDINGS = [
        Binding("escape", "app.pop_screen", "back"),
        Binding("e", "edit", "edit rule"),
        Binding("d", "delete", "delete"),
    ]

    def __init__(self, robot: ConsoleSession) -> None:
        super().__init__()
        self.robot = robot

    def compose(self) -> ComposeResult:  # noqa: D102
        yield Header()
        yield DataTable(id="entries", cursor_type="row")
        yield Static("", id="detail")
        yield Input(placeholder="edited rule (Enter saves)", id="edit")
        yield Footer()

    def on_mount(self) -> None:  # noqa: D102
        table = self.query_one("#entries", DataTable)
        table.add_columns("id", "kind", "rule", "confidence")
        self.query_one("#edit", Input).display = False
        self.reload()
        table.focus()

    def reload(self) -> None:
        """Re-reads the entries (after an edit or a delete)."""
        table = self.query_one("#entries", DataTable)
        table.clear()
        detail = self.query_one("#detail", Static)
        try:
            entries = self.robot.kb_entries()
        except CorrigibleError as exc:
            detail.update(Text(str(exc), style="red"))
            return
        for e in entries:
            table.add_row(e.id[:8], e.kind, e.text[:70], f"{e.confidence:.2f}", key=e.id)
        if not entries:
            detail.update("the knowledge base is empty")
        else:
            self.show(entries[0].id)

    def selected(self) -> str | None:
        """The id of the highlighted entry."""
        table = self.query_one("#entries", DataTable)
        if table.row_count == 0:
            return None
        return str(table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value)

    def show(self, entry_id: str) -> None:
        """Shows one entry in full, with its provenance."""
        entry = next((e for e in self.robot.kb_entries() if e.id == entry_id), None)
        if entry is None:
            return
        out = Text(entry.text, style="bold")
        lines = [
            f"id {entry.id}  kind {entry.kind}  skill {entry.skill}  params {entry.params}",
            f"scope {entry.scope}  confidence {entry.confidence:.2f}",
            "provenance:",
            *(f"  {p}" for p in entry.provenance),
        ]
        out.append("\n" + "\n".join(lines))
        self.query_one("#detail", Static).update(out)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:  # noqa: D102
        if event.row_key.value is not None:
            self.show(str(event.row_key.value))

    def action_edit(self) -> None:
        """Opens the selected entry's rule for editing."""
        entry_id = self.selected()
        if entry_id is None:
            return
        entry = next(e for e in self.robot.kb_entries() if e.id == entry_id)
        box = self.query_one("#edit", Input)
        box.display = True
        box.value = entry.text
        box.focus()

    def action_delete(self) -> None:
        """Deletes the selected entry."""
        entry_id = self.selected()
        if entry_id is not None:
            try:
                self.robot.kb_delete(entry_id)
            except CorrigibleError as exc:
                self.notify(str(exc), severity="error")
            self.reload()

    def on_input_submitted(self, event: Input.Submitted) -> None:  # noqa: D102
        entry_id = self.selected()
        event.input.display = False
        if entry_id is not None:
            try:
                self.robot.kb_edit(entry_id, event.value)
            except CorrigibleError as exc:
                self.notify(str(exc), severity="error")
        self.reload()
        self.query_one("#entries", DataTable).focus()


class ConsoleApp(App[None]):
    """The terminal console over one `ConsoleSession` (started when the app mounts).

    Args:
        robot: the session to show and correct.
        recorder: records one push-to-talk clip (default: the microphone, `record_microphone`).
        start: start the episode when the app mounts (False: browse the knowledge base only).
    """

    TITLE = "corrigible console"
    CSS = """
    #top { height: 1fr; }
    #left { width: 1fr; }
    #program { height: auto; border: round $accent; }
    #trace { width: 1fr; border: round $accent; overflow-y: auto; }
    #knowledge { height: auto; max-height: 8; border: round $accent; }
    #reply { height: auto; border: round $success; }
    #status { height: 1; }
    """
    BINDINGS = [
        Binding("f5", "toggle_pause", "pause/resume", priority=True),
        Binding("f6", "stop", "stop", priority=True),
        Binding("escape", "estop", "E-STOP", priority=True),
        Binding("f7", "undo", "undo", priority=True),
        Binding("f8", "push_to_talk", "push-to-talk", priority=True),
        Binding("f2", "kb", "knowledge base", priority=True),
    ]
    ENABLE_COMMAND_PALETTE = False

    def __init__(
        self,
        robot: ConsoleSession,
        *,
        recorder: Recorder | None = None,
        start: bool = True,
    ) -> None:
        super().__init__()
        self.robot = robot  # (not `console`: textual's App keeps its rich Console there)
        self.recorder = recorder or record_microphone
        self._start = start
        self._shown_events = -1
        self._shown_replies = -1

    def compose(self) -> ComposeResult:  # noqa: D102
        yield Header()
        yield Static("", id="status")
        with Horizontal(id="top"):
            with Vertical(id="left"):
                yield Static("", id="program")
                yield Static("", id="knowledge")
                yield Static("", id="reply")
            yield Static("", id="trace")
        yield Input(placeholder="type a correction (e.g. 'a bit to the left'), Enter", id="say")
        yield Footer()

    def on_mount(self) -> None:  # noqa: D102
        self.query_one("#program", Static).border_title = "program"
        self.query_one("#trace", Static).border_title = "trace"
        self.query_one("#knowledge", Static).border_title = "knowledge in use"
        self.query_one("#reply", Static).border_title = "last reply"
        self.query_one("#say", Input).focus()
        if self._start:
            self.robot.start()
        self.set_interval(0.1, self.refresh_view)

    def refresh_view(self) -> None:
        """Redraws from the console's snapshot when something changed."""
        try:
            if isinstance(self.screen, KbScreen):
                return  # the knowledge-base browser is in front
            self._redraw(self.robot.state())
        except (NoMatches, ScreenStackError):
            return  # the app is shutting down and its widgets are gone

    def _redraw(self, state: ConsoleState) -> None:
        if state.events == self._shown_events and state.replies == self._shown_replies:
            self.query_one("#status", Static).update(self._status(state))
            return
        self._shown_events, self._shown_replies = state.events, state.replies
        self.query_one("#status", Static).update(self._status(state))
        self.query_one("#program", Static).update(program_text(state))
        # Text, never markup: event fields and the person's words may hold brackets.
        trace = "\n".join(f"{t.wall_s:7.2f} {t.kind}: {t.text}" for t in state.trace[-40:])
        self.query_one("#trace", Static).update(Text(trace))
        used = "\n".join(f"{k.entry_id[:8]} {k.text}\n    why: {k.why}" for k in state.knowledge)
        self.query_one("#knowledge", Static).update(Text(used or "none"))
        self.query_one("#reply", Static).update(Text(state.reply or "no correction yet"))

    @staticmethod
    def _status(state: ConsoleState) -> Text:
        out = Text(state.status, style="bold")
        out.append(f"  {state.instruction}")
        if state.skill:
            out.append(f"  skill: {state.skill}")
        if state.result:
            out.append(f"  {state.result}")
        return out

    def _say(self, message: str, *, error: bool = False) -> None:
        self.notify(message, severity="error" if error else "information", timeout=4)

    def on_input_submitted(self, event: Input.Submitted) -> None:  # noqa: D102
        if event.input.id != "say":
            return
        text, event.input.value = event.value, ""
        try:
            self.robot.correct(text)
        except CorrigibleError as exc:
            self._say(str(exc), error=True)

    def _control(self, action: Callable[[], object]) -> None:
        try:
            action()
        except CorrigibleError as exc:
            self._say(str(exc), error=True)

    def action_toggle_pause(self) -> None:
        """F5."""
        self._control(self.robot.toggle_pause)

    def action_stop(self) -> None:
        """F6."""
        self._control(self.robot.stop)

    def action_estop(self) -> None:
        """Esc: stop and engage the arm's e-stop."""
        if isinstance(self.screen, KbScreen):
            self.pop_screen()
            return
        self._control(lambda: self.robot.stop(estop=True))

    def action_undo(self) -> None:
        """F7."""
        self._control(self.robot.undo)

    def action_push_to_talk(self) -> None:
        """F8: records a clip and gives it as a spoken correction (in a worker thread)."""
        self.run_worker(self._talk, thread=True, exclusive=True, group="talk")

    def _talk(self) -> None:
        try:
            audio, mime = self.recorder()
            self.robot.hear(audio, mime)
        except CorrigibleError as exc:
            self.call_from_thread(self._say, str(exc), error=True)

    def action_kb(self) -> None:
        """F2: the knowledge-base browser."""
        self.push_screen(KbScreen(self.robot))
