"""`elexirion chat` in a real pseudo-terminal: start, two turns, /feedback, /quit (offline provider)."""

from __future__ import annotations

import io
import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pexpect = pytest.importorskip("pexpect")

REPO = Path(__file__).resolve().parents[3]
PROMPT = "you ▸ "
#: Start-up, then a turn on two slow cores: generous, never slept on.
TURN_TIMEOUT_S = 120
_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b[()][0-9A-Za-z]|[\x01\x02\r]")


def offline_env() -> dict[str, str]:
    """This environment without provider keys or endpoints, so the offline provider answers."""
    drop = ("_API_KEY", "_BASE_URL")
    env = {k: v for k, v in os.environ.items() if not k.endswith(drop)}
    env.pop("ELEXIRION_CONFIG", None)
    env.pop("ELEXIRION_STORE", None)
    return {**env, "TERM": "xterm-256color", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"}


class Terminal:
    """A spawned chat and its transcript; expect() failures show what the screen said."""

    def __init__(self, child: Any, transcript: io.StringIO) -> None:
        self.child = child
        self.transcript = transcript

    def expect(self, pattern: Any, timeout: float = TURN_TIMEOUT_S) -> str:
        """Wait for ``pattern`` (a regex or ``pexpect.EOF``); returns what came before it, without ANSI codes."""
        try:
            self.child.expect(pattern, timeout=timeout)
        except (pexpect.TIMEOUT, pexpect.EOF) as exc:
            seen = _ANSI.sub("", self.transcript.getvalue())[-4000:]
            raise AssertionError(
                f"{type(exc).__name__} waiting for {pattern!r}; the terminal showed:\n{seen}"
            ) from None
        return _ANSI.sub("", str(self.child.before))

    def send(self, line: str) -> None:
        self.child.sendline(line)


@pytest.fixture
def terminal(tmp_path: Path) -> Iterator[Terminal]:
    """`elexirion chat --embedded` on a fresh store, in a 50x200 pseudo-terminal."""
    exe = Path(sys.executable).parent / "elexirion"
    transcript = io.StringIO()
    child = pexpect.spawn(
        str(exe),
        [
            "chat",
            "--embedded",
            "--store",
            f"sqlite:///{tmp_path / 'db.sqlite'}",
            "--workspace",
            str(REPO),
        ],
        cwd=str(tmp_path),
        env=offline_env(),
        encoding="utf-8",
        codec_errors="replace",
        dimensions=(50, 200),
        timeout=TURN_TIMEOUT_S,
    )
    child.logfile_read = transcript
    yield Terminal(child, transcript)
    if child.isalive():
        child.terminate(force=True)
    child.close()


def test_two_turns_feedback_and_quit_in_a_real_terminal(terminal: Terminal) -> None:
    """Start, analyse (findings as app.py:LINE), refactor from that analysis, rate it 9, /quit exits 0."""
    terminal.expect(re.escape(PROMPT))

    terminal.send("analyze the code in examples/sample_project/app.py")
    terminal.expect(r"analysis agent")
    answer = terminal.expect(re.escape(PROMPT))
    assert re.search(r"app\.py:\d+", answer), answer
    assert "app.py:58" in answer, answer  # parse_quantity's eval()

    terminal.send("now refactor it based on that analysis")
    terminal.expect(r"refactoring agent")
    answer = terminal.expect(re.escape(PROMPT))
    assert "Refactoring plan" in answer, answer

    terminal.send("/feedback 9 great analysis")
    terminal.expect(r"rated 9/10")
    terminal.expect(re.escape(PROMPT))

    terminal.send("/quit")
    terminal.expect(pexpect.EOF)
    terminal.child.close()
    assert terminal.child.exitstatus == 0


SLOW_CHAT = '''
import asyncio, sys
from serve import cli_chat
from serve.cli import app


class SlowBackend:
    """Turns of "slow" wait until cancelled; any other message is answered at once."""

    async def chat(self, session_id, message, *, user_id=None, on_event=None):
        on_event({"event": "routing"})
        if message == "slow":
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                print("backend saw the cancel", flush=True)
                raise
        return {"type": "general", "agent": "general", "summary": "quick answer",
                "response_id": "r1", "session_id": "s1"}

    async def close(self):
        print("backend closed", flush=True)


cli_chat.make_backend = lambda **kwargs: (SlowBackend(), "slow fake backend")
sys.argv = ["elexirion", "chat"]
app()
'''


def test_ctrl_c_cancels_the_turn_not_the_chat(tmp_path: Path) -> None:
    """Ctrl-C during a turn cancels that turn (the backend sees the cancel); the chat goes on; Ctrl-D exits 0."""
    script = tmp_path / "slow_chat.py"
    script.write_text(SLOW_CHAT)
    transcript = io.StringIO()
    child = pexpect.spawn(
        sys.executable,
        [str(script)],
        cwd=str(REPO),
        env=offline_env(),
        encoding="utf-8",
        dimensions=(50, 200),
        timeout=TURN_TIMEOUT_S,
    )
    child.logfile_read = transcript
    terminal = Terminal(child, transcript)
    try:
        terminal.expect(re.escape(PROMPT))
        terminal.send("slow")
        terminal.expect("routing")  # the live status line: the turn is running
        child.sendintr()
        terminal.expect("backend saw the cancel")
        terminal.expect("cancelled")
        terminal.expect(re.escape(PROMPT))
        terminal.send("fast")
        terminal.expect("quick answer")
        terminal.expect(re.escape(PROMPT))
        child.sendeof()
        terminal.expect("backend closed")
        terminal.expect(pexpect.EOF)
        child.close()
        assert child.exitstatus == 0
    finally:
        if child.isalive():
            child.terminate(force=True)
