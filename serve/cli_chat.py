"""``elexirion chat``: talk to the agents, interactively or one message at a time.

The chat talks to a :class:`~actors.agents.backend.ChatBackend`: the running tree
(``elexirion up``) when one is found, else the embedded in-process backend over the
local store; ``--embedded`` never touches Ray. :func:`make_backend` is that choice,
and the one seam tests replace.

``--once TEXT`` runs one turn: the rendered answer (or, with ``--json``, exactly one
JSON object: the response plus ``session_id``) on stdout; exit 0 done, 2 bad input
(an unknown session, an empty message, a bad store URL), 1 any other failure, with one
line on stderr. Without ``--once`` it is an interactive loop (``/help`` lists its
commands); errors in a turn are shown and the chat goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
from collections.abc import Awaitable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from serve._chat_render import (
    TurnProgress,
    print_history,
    print_preferences,
    print_response,
    print_sessions,
)

if TYPE_CHECKING:
    from actors.agents.backend import ChatBackend

__all__ = ["ChatLoop", "make_backend", "register"]

# Ray reads its auth mode once, when first imported (see serve.cli_tree).
os.environ.setdefault("RAY_AUTH_MODE", "token")

T = TypeVar("T")

HELP = """\
[bold]commands[/]
  /help              this list
  /new               start a new session
  /sessions          your sessions (id, updated, turns, agent, title)
  /switch ID         continue a session (a unique prefix of its id is enough)
  /history           the turns of this session
  /feedback N \\[text] rate the last answer 1..10, optionally say why
  /n N               send suggestion N of the last answer
  /quit, /exit       leave (Ctrl-D too); Ctrl-C cancels a running turn"""


class BadInput(Exception):  # noqa: N818 - reads as the outcome, like ConfigError
    """The user's input is wrong (exit 2 with ``--once``)."""


def _default_store() -> str:
    return os.environ.get("ELEXIRION_STORE") or (
        f"sqlite:///{Path('.elexirion/elexirion.db').resolve()}"
    )


def make_backend(
    *, embedded: bool, address: str | None, store: str, workspace: str
) -> tuple[ChatBackend, str]:
    """The backend to chat with, and a one-line note saying which one it is.

    ``embedded`` → :class:`~actors.agents.local.LocalBackend`; otherwise the running
    tree at ``address`` (default: the running Ray cluster) when there is one, else
    the embedded backend. Raises what the backend constructors raise.
    """
    from actors.agents.local import LocalBackend

    shown_store = store.rsplit("@", maxsplit=1)[-1]  # never print a password of a DSN
    if embedded:
        return LocalBackend(store, workspace=workspace), f"embedded backend (store {shown_store})"
    reason = "no running tree found"
    try:
        from serve.platform_backend import connect_tree

        tree = connect_tree(address, workspace=workspace)
    except Exception as exc:  # noqa: BLE001 - any failure to reach the tree means: go embedded
        tree, reason = None, f"cannot reach the tree ({_one_line(exc)})"
    if tree is not None:
        return tree, f"connected to the running tree{f' at {address}' if address else ''}"
    local = LocalBackend(store, workspace=workspace)
    return local, f"{reason}; using the embedded backend (store {shown_store})"


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _is_bad_input(exc: BaseException) -> bool:
    """User errors: exit 2, not 1 (ConfigError, StoreConfigError, LookupError, ValueError)."""
    from pipelines.errors import ConfigError
    from store.errors import StoreConfigError

    return isinstance(exc, BadInput | ConfigError | StoreConfigError | LookupError | ValueError)


def chat(  # noqa: PLR0917 - typer maps each CLI option to a parameter
    once: Annotated[
        str | None, typer.Option("--once", help="Send this one message, print the answer, exit.")
    ] = None,
    session: Annotated[
        str | None, typer.Option("--session", help="Continue this session (default: a new one).")
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="With --once: print the response as one JSON object.")
    ] = False,
    user: Annotated[str | None, typer.Option("--user", help="User id for sessions.")] = None,
    store: Annotated[
        str | None,
        typer.Option(help="Store URL (default: $ELEXIRION_STORE or .elexirion/elexirion.db)."),
    ] = None,
    workspace: Annotated[
        Path | None, typer.Option(help="Directory the agents may read (default: here).")
    ] = None,
    embedded: Annotated[
        bool, typer.Option("--embedded", help="Run the agents in this process; never use Ray.")
    ] = False,
    address: Annotated[
        str | None, typer.Option(help="Ray address of a running tree (default: the running one).")
    ] = None,
    url: Annotated[
        str | None, typer.Option(help="Chat with a remote server over HTTP (its base URL).")
    ] = None,
    key: Annotated[
        str | None,
        typer.Option(help="API key for --url (default: $ELEXIRION_API_KEY).", show_default=False),
    ] = None,
) -> None:
    """Chat with the agents (the running tree, else an embedded one); --once for scripts."""
    err = Console(stderr=True, highlight=False)
    root = (workspace or Path.cwd()).resolve()
    problem = None
    if as_json and once is None:
        problem = "--json needs --once"
    elif once is not None and not once.strip():
        problem = "--once needs a non-empty message"
    elif not root.is_dir():
        problem = f"workspace {root} is not a directory"
    if problem:
        err.print(f"[bold red]error[/] (bad input): {escape(problem)}", soft_wrap=True)
        raise typer.Exit(2)
    try:
        if url is not None:
            from serve.http_client import HttpBackend

            backend: ChatBackend = HttpBackend(url, key=key or os.environ.get("ELEXIRION_API_KEY"))
            note = f"connected to {url}"
        else:
            backend, note = make_backend(
                embedded=embedded,
                address=address,
                store=store or _default_store(),
                workspace=str(root),
            )
    except Exception as exc:  # noqa: BLE001 - one clear line, never a traceback
        kind = "bad store or workspace" if _is_bad_input(exc) else "cannot start the chat backend"
        err.print(f"[bold red]error[/] ({kind}): {escape(_one_line(exc))}", soft_wrap=True)
        raise typer.Exit(2 if _is_bad_input(exc) else 1) from None
    err.print(f"[dim]{escape(note)}[/]", soft_wrap=True)
    with asyncio.Runner() as runner:
        try:
            if once is not None:
                code = _once(runner, backend, once, session, user, as_json, str(root), err)
            else:
                code = ChatLoop(runner, backend, user=user, session=session, workspace=str(root))()
        finally:
            try:
                runner.run(backend.close())
            except Exception as exc:  # noqa: BLE001 - closing must not hide the answer
                err.print(f"[dim]closing the backend failed: {escape(_one_line(exc))}[/]")
    if code:
        raise typer.Exit(code)


def _once(  # noqa: PLR0917 - the command's options, passed on
    runner: asyncio.Runner,
    backend: ChatBackend,
    message: str,
    session: str | None,
    user: str | None,
    as_json: bool,
    workspace: str,
    err: Console,
) -> int:
    """One turn for scripts; returns the exit code."""
    try:
        with TurnProgress(err, lines=False, tokens=False) as progress:
            result = runner.run(backend.chat(session, message, user_id=user, on_event=progress))
    except KeyboardInterrupt:
        err.print("[yellow]cancelled[/]")
        return 1
    except Exception as exc:  # noqa: BLE001 - one clear line, never a traceback
        bad = _is_bad_input(exc)
        kind = "bad input" if bad else "chat failed"
        err.print(f"[bold red]error[/] ({kind}): {escape(_one_line(exc))}", soft_wrap=True)
        return 2 if bad else 1
    if as_json:
        sys.stdout.write(json.dumps(result, default=str, ensure_ascii=False) + "\n")
        sys.stdout.flush()
    else:
        print_response(Console(highlight=False), result, workspace=workspace)
        err.print(f"[dim]session {result.get('session_id')} (continue with --session)[/]")
    return 0


class ChatLoop:
    """The interactive chat: reads lines, runs turns and slash commands until /quit or EOF.

    Backend calls run on the one event loop of ``runner`` (the backend's connections
    live there). Errors of a turn or command are printed in one line and the loop goes
    on; Ctrl-C during a turn cancels that turn only.
    """

    def __init__(
        self,
        runner: asyncio.Runner,
        backend: ChatBackend,
        *,
        user: str | None,
        session: str | None,
        workspace: str,
    ) -> None:
        self.runner = runner
        self.backend = backend
        self.user = user
        self.session = session
        self.workspace = workspace
        self.last: dict[str, Any] | None = None
        self.out = Console(highlight=False)
        self.prompt = _prompt(self.out)

    def __call__(self) -> int:
        """Run until the user leaves; returns the exit code (0)."""
        _enable_line_editing()
        self.out.print(
            "[bold]elexirion chat[/] [dim]· /help for commands · /quit or Ctrl-D to leave[/]"
        )
        if self.session:
            self.out.print(f"[dim]continuing session {escape(self.session)}[/]")
        while True:
            try:
                line = input(self.prompt).strip()
            except EOFError:
                self.out.print()
                return 0
            except KeyboardInterrupt:
                self.out.print("\n[dim](/quit or Ctrl-D to leave)[/]")
                continue
            if not line:
                continue
            if line in ("/quit", "/exit"):
                return 0
            try:
                if line.startswith("/"):
                    self.command(line)
                else:
                    self.turn(line)
            except KeyboardInterrupt:
                self.out.print("[yellow]cancelled[/]")
            except Exception as exc:  # noqa: BLE001 - show it and keep the chat going
                self.out.print(f"[bold red]error[/]: {escape(_one_line(exc))}", soft_wrap=True)

    def call(self, awaitable: Awaitable[T]) -> T:
        """Run one backend call on the chat's event loop."""

        async def _await() -> T:
            return await awaitable

        return self.runner.run(_await())

    def turn(self, message: str) -> None:
        """Send ``message`` with live progress, then render the answer."""
        with TurnProgress(self.out) as progress:
            try:
                result = self.call(
                    self.backend.chat(self.session, message, user_id=self.user, on_event=progress)
                )
            except asyncio.CancelledError:
                raise KeyboardInterrupt from None
        self.session = str(result.get("session_id") or self.session)
        self.last = result
        self.out.print()
        print_response(self.out, result, workspace=self.workspace, streamed=progress.streamed)
        self.out.print()

    def command(self, line: str) -> None:
        """Run a slash command; raises :class:`BadInput` for unknown or malformed ones."""
        name, _, arg = line.partition(" ")
        arg = arg.strip()
        if name == "/help":
            self.out.print(HELP)
        elif name == "/new":
            self.session = self.call(self.backend.start_session(self.user))
            self.last = None
            self.out.print(f"new session {escape(self.session)}")
        elif name == "/sessions":
            rows = self.call(self.backend.sessions(self.user))
            print_sessions(self.out, rows, current=self.session)
        elif name == "/switch":
            self.switch(arg)
        elif name == "/history":
            if not self.session:
                raise BadInput("no session yet: send a message first")
            print_history(self.out, self.call(self.backend.history(self.session)))
        elif name == "/feedback":
            self.feedback(arg)
        elif name == "/n":
            actions = (self.last or {}).get("next_actions") or []
            number = _number(arg, "/n N", 1, len(actions)) if actions else None
            if number is None:
                raise BadInput("the last answer has no suggestions to send")
            message = str(actions[number - 1])
            self.out.print(f"[dim]{escape(_prompt_text())}{escape(message)}[/]")
            self.turn(message)
        else:
            raise BadInput(f"unknown command {name}; /help lists the commands")

    def switch(self, prefix: str) -> None:
        """Continue the one session of this user whose id starts with ``prefix``."""
        if not prefix:
            raise BadInput("usage: /switch ID (see /sessions)")
        rows = self.call(self.backend.sessions(self.user, limit=200))
        ids = [str(r.get("id")) for r in rows if str(r.get("id") or "").startswith(prefix)]
        if len(ids) != 1:
            raise BadInput(
                f"no session starts with {prefix}"
                if not ids
                else f"{prefix} matches {len(ids)} sessions; type more of the id"
            )
        self.session, self.last = ids[0], None
        self.out.print(f"switched to session {escape(ids[0])}")

    def feedback(self, arg: str) -> None:
        """``/feedback N [text]``: rate the last answer of this session."""
        score, _, text = arg.partition(" ")
        rating = _number(score, "/feedback N [text] with N in 1..10", 1, 10)
        response_id = (self.last or {}).get("response_id") or self._last_response_id()
        if not self.session or not response_id:
            raise BadInput("nothing to rate yet: send a message first")
        result = self.call(self.backend.rate(self.session, str(response_id), rating, text.strip()))
        self.out.print(f"[green]thanks: rated {rating}/10[/]" + (" with feedback" if text else ""))
        print_preferences(self.out, result.get("preferences") or {})

    def _last_response_id(self) -> str | None:
        """The newest answer's id from the stored history (after /switch or --session)."""
        if not self.session:
            return None
        for turn in reversed(self.call(self.backend.history(self.session))):
            meta = turn.get("meta") or {}
            if turn.get("role") != "user" and meta.get("response_id"):
                return str(meta["response_id"])
        return None


def _number(text: str, usage: str, low: int, high: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise BadInput(f"usage: {usage}") from None
    if not low <= value <= high:
        raise BadInput(f"{value} is out of range {low}..{high}")
    return value


def _prompt_text() -> str:
    """``you ▸ ``, or ``you > `` where stdout cannot encode ▸."""
    try:
        "▸".encode(getattr(sys.stdout, "encoding", None) or "ascii")
    except (UnicodeEncodeError, LookupError):
        return "you > "
    return "you ▸ "


def _prompt(console: Console) -> str:
    """The input prompt, bold green on a colour terminal."""
    text = _prompt_text()
    if console.is_terminal and not console.no_color and console.color_system:
        # \001 and \002 tell readline the escape codes take no room on the line.
        return f"\001\x1b[1;32m\002{text}\001\x1b[0m\002"
    return text


def _enable_line_editing() -> None:
    """Arrow keys and history (up/down) in ``input()`` where readline exists."""
    with contextlib.suppress(ImportError):
        import readline  # noqa: F401 - importing it is what enables line editing


def register(app: typer.Typer) -> None:
    app.command()(chat)
