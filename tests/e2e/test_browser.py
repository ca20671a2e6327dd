"""The web chat and dashboard in a real browser (Debian's Chromium) against the real app.

The acceptance walk of issue 6: log in with the login URL, send a message, see the
streamed reply with ``file:line`` findings, click a next action, rate the answer,
and see the turns counted on the dashboard; plus a phone-size screenshot. Two more
tests replace the API with crafted answers (Playwright routes) to pin how the page
shows hostile model text and server errors.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import LiveApp

pytestmark = pytest.mark.e2e

ANALYZE = "analyze the code in examples/sample_project/app.py"
REFACTOR = "now refactor it based on that analysis"
#: Offline analysis and refactoring take a few seconds on a small machine.
TURN_TIMEOUT_MS = 90_000


def _expect() -> Any:
    from playwright.sync_api import expect

    return expect


def _watch_console(page: Any) -> list[str]:
    """Collect page errors and console errors (a CSP violation is one of them)."""
    problems: list[str] = []
    page.on("pageerror", lambda exc: problems.append(f"pageerror: {exc}"))
    page.on(
        "console",
        lambda msg: problems.append(f"console: {msg.text}") if msg.type == "error" else None,
    )
    return problems


def test_chat_and_dashboard_walk(browser: Any, live_app: LiveApp, screenshots: Path) -> None:
    """Login link → streamed analysis with app.py:58 → next action → rating → dashboard counts."""
    expect = _expect()
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    problems = _watch_console(page)

    page.goto(live_app.login_url)
    expect(page).to_have_url(f"{live_app.base_url}/")
    expect(page.locator("#login-notice")).to_be_hidden()

    page.locator("#message").fill(ANALYZE)
    with page.expect_response(lambda r: r.url.endswith("/api/agent/chat")) as sent:
        page.locator("#message").press("Enter")
    assert sent.value.headers["content-type"].startswith("text/event-stream"), "streamed"
    expect(page.locator(".turn.user .bubble").first).to_have_text(ANALYZE)
    first = page.locator("article.turn.assistant").nth(0)
    expect(first.locator(".findings .loc", has_text="app.py:58")).to_be_visible(
        timeout=TURN_TIMEOUT_MS
    )
    expect(first.locator(".who")).to_have_text("analysis agent")
    expect(first.locator(".live")).to_have_attribute("aria-live", "polite")
    expect(first.locator(".live")).to_have_attribute("aria-busy", "false")
    row = first.locator(".findings li", has_text="app.py:58")
    expect(row.locator(".sev")).to_have_text(re.compile("error|warning|info"))
    expect(page).to_have_url(re.compile(r"#session=\w+"))
    session_id = page.url.split("#session=")[1]
    page.screenshot(path=str(screenshots / "01-chat-analysis.png"))

    first.get_by_role("button", name=REFACTOR).click()
    second = page.locator("article.turn.assistant").nth(1)
    expect(second.locator("pre.diff").first).to_be_visible(timeout=TURN_TIMEOUT_MS)
    expect(second.locator(".who")).to_have_text("refactoring agent")
    expect(second.locator("pre.diff .del", has_text="eval(").first).to_be_visible()
    expect(page.locator(".turn.user .bubble").nth(1)).to_have_text(REFACTOR)
    page.screenshot(path=str(screenshots / "02-chat-refactoring.png"))

    first.locator("details.feedback summary").click()
    first.get_by_label("Rating").fill("9")
    first.get_by_label("Comment (optional)").fill("great analysis")
    first.get_by_role("button", name="Send rating").click()
    expect(first.locator(".feedback-status")).to_contain_text("rating of 9 was saved")
    first.scroll_into_view_if_needed()
    page.screenshot(path=str(screenshots / "03-chat-rated.png"))

    sessions = page.locator("#session-list .open-session")
    expect(sessions).to_have_count(1)
    expect(sessions.first).to_have_attribute("aria-current", "true")

    page.goto(f"{live_app.base_url}/dashboard")
    page.wait_for_function(
        "() => parseInt(document.querySelector('#turns-count').textContent.replace(/\\D/g, ''))"
        " >= 2",
        timeout=15_000,
    )
    expect(page.locator("#runs-svg")).to_be_visible()
    runs = int(page.locator("#runs-svg").get_attribute("data-total") or 0)
    assert runs >= 1, "the pipeline runs of both turns are counted per minute"
    expect(page.locator("#tree table")).to_be_visible()
    expect(page.locator("#success-rate")).to_have_text(re.compile(r"\d"))
    expect(page.locator("#latency-chart svg")).to_be_visible()  # drawn from the second poll
    page.screenshot(path=str(screenshots / "04-dashboard.png"), full_page=True)

    phone = browser.new_context(
        viewport={"width": 390, "height": 844},
        device_scale_factor=2,
        is_mobile=True,
        has_touch=True,
        storage_state=context.storage_state(),
    )
    small = phone.new_page()
    problems += _watch_console(small)
    small.goto(f"{live_app.base_url}/#session={session_id}")
    expect(small.locator(".findings .loc", has_text="app.py:58").first).to_be_visible()
    expect(small.locator("#sessions")).to_be_hidden()
    small.screenshot(path=str(screenshots / "05-chat-phone.png"))
    small.locator("#sessions-toggle").click()
    expect(small.locator("#sessions")).to_be_visible()
    expect(small.locator("#sessions-toggle")).to_have_attribute("aria-expanded", "true")
    small.screenshot(path=str(screenshots / "06-chat-phone-sessions.png"))
    small.keyboard.press("Escape")
    expect(small.locator("#sessions")).to_be_hidden()
    small.goto(f"{live_app.base_url}/dashboard")
    expect(small.locator("#runs-svg")).to_be_visible()
    small.screenshot(path=str(screenshots / "07-dashboard-phone.png"), full_page=True)
    phone.close()
    context.close()
    assert problems == []


def test_without_login_the_page_says_how_to_log_in(
    browser: Any, live_app: LiveApp, screenshots: Path
) -> None:
    """No cookie: the API answers 401 and both pages point to the printed login link."""
    expect = _expect()
    context = browser.new_context()
    page = context.new_page()
    page.goto(f"{live_app.base_url}/")
    expect(page.locator("#login-notice")).to_be_visible()
    expect(page.locator("#login-notice")).to_contain_text("elexirion serve")
    page.screenshot(path=str(screenshots / "08-not-logged-in.png"))
    page.goto(f"{live_app.base_url}/dashboard")
    expect(page.locator("#login-notice")).to_be_visible()
    page.goto(f"{live_app.base_url}/login?token=elx_not-a-key")
    expect(page.locator("main")).to_contain_text("This login link does not work")
    context.close()


def _sse(*events: tuple[str, Any]) -> str:
    """An event stream with CRLF framing, as some servers send it."""
    return "".join(f"event: {e}\r\ndata: {json.dumps(d)}\r\n\r\n" for e, d in events)


def test_model_text_is_shown_as_text_and_errors_plainly(
    browser: Any, live_app: LiveApp, screenshots: Path
) -> None:
    """Markup in a reply stays text; Shift+Enter is a newline; next actions are reachable
    by keyboard; a 503 shows its status and message."""
    expect = _expect()
    context = browser.new_context()
    page = context.new_page()
    problems = _watch_console(page)
    hostile = '<img src=x onerror="window.pwned=1">'
    answer = {
        "type": "analysis",
        "agent": "analysis",
        "summary": f"summary {hostile}",
        "findings": [
            {"message": hostile, "file": "a<b>.py", "line": 3, "severity": "error", "rule": "X1"}
        ],
        "recommendations": [hostile],
        "next_actions": [hostile],
        "details": {"diffs": [{"file": "a.py", "diff": f"@@ -1 +1 @@\n-{hostile}\n+ok\n"}]},
        "confidence": 0.5,
        "response_id": "r1",
        "session_id": "s1",
    }
    calls: list[dict[str, Any]] = []

    def chat(route: Any) -> None:
        calls.append(json.loads(route.request.post_data))
        if len(calls) == 1:
            body = _sse(
                ("routed", {"agent": "analysis", "type": "analysis", "confidence": 0.9}),
                ("token", {"text": "partial ", "step": "review"}),
                ("response", answer),
            )
            route.fulfill(status=200, content_type="text/event-stream", body=body)
        else:
            error = {"error": {"code": "saturated", "message": "too many turns in flight"}}
            route.fulfill(status=503, json=error, headers={"Retry-After": "2"})

    page.route("**/api/agent/chat", chat)
    page.route("**/api/sessions", lambda route: route.fulfill(json={"sessions": []}))
    page.goto(f"{live_app.base_url}/")
    message = page.locator("#message")
    message.fill("line one")
    message.press("Shift+Enter")
    message.type("line two")
    assert calls == [], "Shift+Enter does not send"
    message.press("Enter")
    turn = page.locator("article.turn.assistant").first
    expect(turn.locator(".findings .loc")).to_have_text("a<b>.py:3")
    assert calls[0]["message"] == "line one\nline two" and calls[0]["stream"] is True
    expect(turn.locator(".summary")).to_have_text(f"summary {hostile}")
    expect(turn.locator(".findings .message")).to_have_text(hostile)
    expect(turn.locator(".next-actions button")).to_have_text(hostile)
    expect(turn.locator("pre.diff .del")).to_have_text(f"-{hostile}")
    assert page.locator("img").count() == 0
    assert page.evaluate("window.pwned") is None

    # Keyboard only: from the message box, Shift+Tab passes "Rate this answer" and
    # reaches the next action; Enter on it sends its text.
    message.focus()
    page.keyboard.press("Shift+Tab")
    expect(turn.locator("details.feedback summary")).to_be_focused()
    page.keyboard.press("Shift+Tab")
    expect(turn.locator(".next-actions button")).to_be_focused()
    page.keyboard.press("Enter")
    error_turn = page.locator("article.turn.assistant").nth(1)
    expect(error_turn.locator(".bubble")).to_contain_text(
        "503 saturated: too many turns in flight (try again in 2 s)"
    )
    expect(error_turn.get_by_role("button", name="Try again")).to_be_visible()
    assert calls[1]["session_id"] == "s1", "the next action continues the session"
    page.screenshot(path=str(screenshots / "09-hostile-text-and-error.png"))
    context.close()
    assert [p for p in problems if "503" not in p] == []
