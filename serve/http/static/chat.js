// Elexirion web chat. Vanilla ES2020, no build step, nothing loaded from elsewhere.
//
// Talks to the same-origin JSON API (the login cookie authenticates):
//   POST /api/agent/chat {message, session_id, stream: true}  -> text/event-stream
//   GET/DELETE /api/sessions[/{id}], POST /api/sessions/{id}/feedback
// Safety rule for this file: text from the server or the model is only ever put in
// the page as text (textContent, Text nodes via append); never through innerHTML.
"use strict";

(() => {
  const $ = (selector) => document.querySelector(selector);

  const state = {
    sessionId: null, // the session the next message goes to (null: a new one)
    busy: false, // a reply is streaming
    controller: null, // aborts the streaming request (the Stop button)
  };

  // ------------------------------------------------------------------ helpers

  /** Build an element: el("p", {class: "x", text: "hi"}, [child, "text"]). */
  function el(tag, attrs = {}, children = []) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs)) {
      if (value === undefined || value === null || value === false) continue;
      if (key === "text") node.textContent = String(value);
      else if (key === "class") node.className = value;
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value === true ? "" : String(value));
    }
    for (const child of [].concat(children)) {
      if (child !== null && child !== undefined) node.append(child); // strings become Text nodes
    }
    return node;
  }

  class ApiError extends Error {
    constructor(status, code, message) {
      super(message);
      this.status = status;
      this.code = code;
    }
  }

  /** "503 saturated: the platform is at capacity" — status, code and message, plainly. */
  function describe(error) {
    if (error instanceof ApiError) {
      const status = error.status ? `${error.status} ` : "";
      return `${status}${error.code}: ${error.message}`;
    }
    return String((error && error.message) || error);
  }

  /** The ApiError of a non-2xx response (its JSON body when it has one). */
  async function errorOf(response) {
    let code = `http_${response.status}`;
    let message = response.statusText || "request failed";
    try {
      const body = await response.json();
      if (body && body.error) {
        code = body.error.code || code;
        message = body.error.message || message;
      }
    } catch (_) {
      // not JSON (a proxy's error page): keep the status text
    }
    const retry = response.headers.get("Retry-After");
    if (retry) message += ` (try again in ${retry} s)`;
    if (response.status === 401) showLogin();
    return new ApiError(response.status, code, message);
  }

  async function api(method, path, body) {
    const init = { method, credentials: "same-origin", headers: { Accept: "application/json" } };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch(path, init);
    } catch (error) {
      throw new ApiError(0, "network", `cannot reach the server (${error.message})`);
    }
    if (!response.ok) throw await errorOf(response);
    return response.status === 204 ? null : response.json();
  }

  function showLogin() {
    $("#login-notice").hidden = false;
  }

  function showError(error) {
    const banner = $("#error-banner");
    banner.replaceChildren(el("strong", { text: "Error " }), describe(error));
    banner.hidden = false;
  }

  function hideError() {
    $("#error-banner").hidden = true;
  }

  function announce(text) {
    $("#chat-status").textContent = text;
  }

  function formatWhen(value) {
    if (value === null || value === undefined || value === "") return "";
    // Epoch seconds or ISO text.
    const date = typeof value === "number" ? new Date(value < 1e12 ? value * 1000 : value) : new Date(value);
    if (Number.isNaN(date.getTime())) return String(value);
    return date.toLocaleString([], { dateStyle: "short", timeStyle: "short" });
  }

  function formatMs(ms) {
    return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(1)} s`;
  }

  // -------------------------------------------------------- server-sent events

  /** Parse one SSE block ("event: x\ndata: {...}") into {event, data}. */
  function parseSseBlock(block) {
    let event = "message";
    const data = [];
    for (const line of block.split("\n")) {
      if (!line || line.startsWith(":")) continue; // comments keep the connection alive
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      let value = colon < 0 ? "" : line.slice(colon + 1);
      if (value.startsWith(" ")) value = value.slice(1);
      if (field === "event") event = value;
      else if (field === "data") data.push(value);
    }
    if (!data.length) return null;
    const text = data.join("\n");
    try {
      return { event, data: JSON.parse(text) };
    } catch (_) {
      return { event, data: text };
    }
  }

  /** Yield the events of a text/event-stream body as they arrive (EventSource cannot POST). */
  async function* readSse(body) {
    const reader = body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        // CRLF framing (common in SSE servers) is normalised on the joined buffer, so a
        // "\r" at the end of one chunk and "\n" at the start of the next still pair up.
        buffer = (buffer + value).replace(/\r\n/g, "\n");
        let cut;
        while ((cut = buffer.indexOf("\n\n")) >= 0) {
          const event = parseSseBlock(buffer.slice(0, cut));
          buffer = buffer.slice(cut + 2);
          if (event) yield event;
        }
      }
      const last = parseSseBlock(buffer.trim());
      if (last) yield last;
    } finally {
      reader.cancel().catch(() => {}); // stops the download if the consumer left early
    }
  }

  // ---------------------------------------------------------------- sessions

  async function loadSessions() {
    let data;
    try {
      data = await api("GET", "/api/sessions");
    } catch (error) {
      if (error.status !== 401) showError(error);
      return;
    }
    renderSessions((data && data.sessions) || []);
  }

  function renderSessions(sessions) {
    const list = $("#session-list");
    if (!sessions.length) {
      list.replaceChildren(el("li", { class: "empty", text: "No sessions yet." }));
      return;
    }
    list.replaceChildren(
      ...sessions.map((session) => {
        const title = session.title || "(untitled)";
        const turns = `${session.turn_count || 0} turn${session.turn_count === 1 ? "" : "s"}`;
        const meta = [turns, session.active_agent, formatWhen(session.updated_at)].filter(Boolean);
        return el("li", {}, [
          el(
            "button",
            {
              type: "button",
              class: "open-session",
              "aria-current": session.id === state.sessionId ? "true" : false,
              "data-session": session.id,
              onclick: () => openSession(session.id),
            },
            [el("span", { class: "title", text: title }), el("span", { class: "meta", text: meta.join(" · ") })],
          ),
          el("button", {
            type: "button",
            class: "delete-session",
            "aria-label": `Delete session ${title}`,
            title: "Delete session",
            text: "✕",
            onclick: () => deleteSession(session.id, title),
          }),
        ]);
      }),
    );
  }

  async function openSession(id) {
    if (state.busy) return;
    hideError();
    let session;
    try {
      session = await api("GET", `/api/sessions/${encodeURIComponent(id)}`);
    } catch (error) {
      if (error.status !== 401) showError(error);
      return;
    }
    state.sessionId = session.id || id;
    history.replaceState(null, "", `#session=${encodeURIComponent(state.sessionId)}`);
    const log = $("#log");
    log.replaceChildren();
    for (const turn of session.turns || []) {
      if (turn.role === "user") {
        addUserTurn(turn.content || "");
      } else {
        const meta = turn.meta || {};
        const response = meta.response || { agent: meta.agent || turn.role, summary: turn.content || "" };
        const container = addTurn("assistant", response.agent ? `${response.agent} agent` : "assistant");
        container.bubble.append(...renderAnswer(response, state.sessionId));
      }
    }
    if (!log.children.length) showEmptyState();
    scrollToEnd();
    closeDrawer();
    markCurrentSession();
    announce(`Opened session ${session.title || ""}`.trim());
    focusMessage();
  }

  async function deleteSession(id, title) {
    if (!window.confirm(`Delete the session “${title}”? Its turns are removed for good.`)) return;
    try {
      await api("DELETE", `/api/sessions/${encodeURIComponent(id)}`);
    } catch (error) {
      showError(error);
      return;
    }
    if (id === state.sessionId) newChat();
    await loadSessions();
    announce("Session deleted");
  }

  function markCurrentSession() {
    for (const button of document.querySelectorAll("#session-list .open-session")) {
      if (button.dataset.session === state.sessionId) button.setAttribute("aria-current", "true");
      else button.removeAttribute("aria-current");
    }
  }

  function newChat() {
    if (state.busy) return;
    state.sessionId = null;
    history.replaceState(null, "", window.location.pathname);
    showEmptyState();
    markCurrentSession();
    closeDrawer();
    $("#message").focus();
  }

  function showEmptyState() {
    $("#log").replaceChildren(
      el("p", { class: "empty-state", text: "New chat. Ask about your code, a plan, tests or a deployment." }),
    );
  }

  // ------------------------------------------------------------ conversation

  function addTurn(role, who) {
    const log = $("#log");
    const empty = log.querySelector(".empty-state");
    if (empty) empty.remove();
    const bubble = el("div", { class: "bubble" });
    const turn = el("article", { class: `turn ${role}`, "aria-label": who }, [
      el("div", { class: "who", text: who }),
      bubble,
    ]);
    log.append(turn);
    scrollToEnd();
    return { turn, bubble };
  }

  function addUserTurn(text) {
    const { bubble } = addTurn("user", "You");
    bubble.textContent = text;
  }

  function scrollToEnd() {
    const log = $("#log");
    log.scrollTop = log.scrollHeight;
  }

  /** The parts of an answer, in reading order. ``live`` is the (streamed) summary region. */
  function renderAnswer(response, sessionId, live) {
    const parts = [answerHead(response)];
    if (response.fallback_from) {
      const reason = response.fallback_reason ? `: ${response.fallback_reason}` : "";
      parts.push(
        el("p", {
          class: "fallback",
          text: `Answered by the ${response.agent} agent instead of ${response.fallback_from}${reason}`,
        }),
      );
    }
    const summary = String(response.summary || "");
    const region = live || el("div", { class: "live" });
    region.replaceChildren(el("p", { class: "summary", text: summary }));
    region.setAttribute("aria-busy", "false");
    parts.push(region);
    if (response.suggestion) {
      parts.push(el("p", { class: "suggestion" }, [el("strong", { text: "Suggestion: " }), response.suggestion]));
    }
    const findings = (response.findings || []).filter((f) => f && typeof f === "object");
    if (findings.length) parts.push(...renderFindings(findings));
    const recommendations = response.recommendations || [];
    if (recommendations.length) {
      parts.push(el("h3", { text: "Recommendations" }));
      parts.push(el("ol", {}, recommendations.map((text) => el("li", { text }))));
    }
    parts.push(...renderDetails(response));
    const actions = response.next_actions || [];
    if (actions.length) {
      parts.push(
        el(
          "div",
          { class: "next-actions", role: "group", "aria-label": "Next actions" },
          actions.map((text) =>
            el("button", { type: "button", class: "next-action", text, disabled: state.busy, onclick: () => send(text) }),
          ),
        ),
      );
    }
    if (sessionId && response.response_id) parts.push(feedbackForm(sessionId, response.response_id));
    return parts;
  }

  function answerHead(response) {
    const bits = [];
    if (response.type && response.type !== response.agent) bits.push(response.type);
    if (typeof response.confidence === "number") bits.push(`confidence ${response.confidence.toFixed(2)}`);
    if (response.pipeline_used) bits.push(`pipeline ${response.pipeline_used}`);
    if (typeof response.cost_usd === "number") bits.push(`$${response.cost_usd.toFixed(4)}`);
    if (typeof response.latency_ms === "number") bits.push(formatMs(response.latency_ms));
    return el("div", { class: "answer-head" }, [
      el("span", { class: "agent", text: `${response.agent || "?"} agent` }),
      bits.length ? ` · ${bits.join(" · ")}` : "",
    ]);
  }

  const SHOWN_FINDINGS = 50;

  function renderFindings(findings) {
    const ordered = [...findings].sort(
      (a, b) => String(a.file || "").localeCompare(String(b.file || "")) || (a.line || 0) - (b.line || 0),
    );
    const item = (finding) => {
      const severity = ["error", "warning", "info"].includes(finding.severity) ? finding.severity : "info";
      const location = finding.file ? (finding.line ? `${finding.file}:${finding.line}` : finding.file) : "—";
      return el("li", {}, [
        el("code", { class: "loc", text: location }),
        el("span", { class: `sev sev-${severity}`, text: severity }),
        el("span", { class: "rule", text: finding.rule || "" }),
        el("span", { class: "message", text: finding.message || "" }),
      ]);
    };
    const list = el("ul", { class: "findings" }, ordered.slice(0, SHOWN_FINDINGS).map(item));
    const parts = [el("h3", { text: `Findings (${ordered.length})` }), list];
    if (ordered.length > SHOWN_FINDINGS) {
      const more = el("button", {
        type: "button",
        text: `Show ${ordered.length - SHOWN_FINDINGS} more`,
        onclick: () => {
          list.append(...ordered.slice(SHOWN_FINDINGS).map(item));
          more.remove();
        },
      });
      parts.push(more);
    }
    return parts;
  }

  /** A unified diff in a <pre>, one span per line so added/removed lines are tinted. */
  function diffBlock(diff) {
    // The lines sit in one inline-block as wide as the longest line, so the tints of
    // added and removed lines reach across when the <pre> scrolls sideways.
    const body = el("code", { class: "diff-body" });
    const pre = el("pre", { class: "diff" }, [body]);
    for (const line of String(diff).replace(/\n$/, "").split("\n")) {
      let kind = "";
      if (line.startsWith("@@")) kind = "hunk";
      else if (line.startsWith("+") && !line.startsWith("+++")) kind = "add";
      else if (line.startsWith("-") && !line.startsWith("---")) kind = "del";
      body.append(kind ? el("span", { class: kind, text: line }) : `${line}\n`);
    }
    return pre;
  }

  /** Diffs, notes, a plan, workflow steps, rollout stages, generated code and its test run. */
  function renderDetails(response) {
    const details = response.details && typeof response.details === "object" ? response.details : {};
    const parts = [];
    if (typeof details.diff === "string" && details.diff.trim()) {
      parts.push(el("h3", { text: "Diff" }), diffBlock(details.diff));
    }
    for (const item of details.diffs || []) {
      if (typeof item === "string") {
        parts.push(el("h3", { text: "Diff" }), diffBlock(item));
      } else if (item && typeof item.diff === "string") {
        parts.push(el("h3", {}, ["Diff of ", el("code", { text: item.file || "?" })]));
        if (item.description) parts.push(el("p", { text: item.description }));
        parts.push(diffBlock(item.diff));
      }
    }
    for (const note of details.notes || []) parts.push(el("p", { class: "progress", text: `Note: ${note}` }));
    const plan = response.plan || details.plan;
    if (plan && Array.isArray(plan.subtasks) && plan.subtasks.length) {
      parts.push(el("h3", { text: plan.summary ? `Plan: ${plan.summary}` : "Plan" }));
      parts.push(
        el(
          "ol",
          {},
          plan.subtasks.map((task) => {
            const after = (task.depends_on || []).length ? ` (after ${task.depends_on.join(", ")})` : "";
            return el("li", {}, [el("code", { text: task.id }), ` ${task.agent} — ${task.description || ""}${after}`]);
          }),
        ),
      );
    }
    const steps = response.steps || details.steps;
    if (Array.isArray(steps) && steps.length && typeof steps[0] === "object") {
      const marks = { succeeded: "✓", failed: "✗", skipped: "–" };
      parts.push(el("h3", { text: "Workflow steps" }));
      parts.push(
        el(
          "ul",
          {},
          steps.map((step) => {
            const inner = step.response && step.response.summary ? ` — ${step.response.summary}` : "";
            const error = step.error ? ` — error: ${step.error}` : "";
            const status = step.status || "?";
            return el("li", {
              text: `${marks[status] || "?"} ${step.id} ${step.agent}: ${step.description || ""} (${status})${inner}${error}`,
            });
          }),
        ),
      );
    }
    if (Array.isArray(details.stages) && details.stages.length) {
      parts.push(el("h3", { text: "Rollout" }));
      parts.push(
        el(
          "ol",
          {},
          details.stages.map((stage) => {
            const lines = [...(stage.actions || [])];
            if ((stage.checks || []).length) lines.push(`checks: ${stage.checks.join("; ")}`);
            if (stage.rollback) lines.push(`rollback: ${stage.rollback}`);
            return el("li", {}, [stage.name || "", el("ul", {}, lines.map((text) => el("li", { text })))]);
          }),
        ),
      );
      if ((details.risks || []).length) {
        parts.push(el("h3", { text: "Risks" }), el("ul", {}, details.risks.map((text) => el("li", { text }))));
      }
    }
    if (typeof details.code === "string" && details.code.trim()) {
      parts.push(el("h3", {}, [el("code", { text: details.test_file || details.module || "code" })]));
      parts.push(el("pre", { text: details.code }));
    }
    if (details.run && details.run.verdict) {
      parts.push(el("p", {}, [el("strong", { text: "Test run: " }), details.run.verdict]));
      if (details.run.exit_code && details.run.output_tail) parts.push(el("pre", { text: details.run.output_tail }));
    }
    return parts;
  }

  /** Rate an answer 1-10 with an optional comment; the reply confirms in a status line. */
  function feedbackForm(sessionId, responseId) {
    const rating = el("input", { type: "number", name: "rating", min: 1, max: 10, step: 1, required: true, inputmode: "numeric" });
    const comment = el("input", { type: "text", name: "feedback", maxlength: 2000 });
    const status = el("p", { class: "feedback-status", role: "status" });
    const submit = el("button", { type: "submit", text: "Send rating" });
    const form = el("form", { class: "feedback-form" }, [
      el("label", {}, ["Rating (1–10)", rating]),
      el("label", { class: "comment" }, ["Comment (optional)", comment]),
      submit,
      status,
    ]);
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      submit.disabled = true;
      status.className = "feedback-status";
      status.textContent = "Sending…";
      try {
        const body = { response_id: responseId, rating: Number(rating.value), feedback: comment.value };
        const result = await api("POST", `/api/sessions/${encodeURIComponent(sessionId)}/feedback`, body);
        status.classList.add("ok");
        status.textContent = `Thanks, your rating of ${body.rating} was saved.${learned(result && result.preferences)}`;
      } catch (error) {
        status.classList.add("error");
        status.textContent = `Not saved: ${describe(error)}`;
      } finally {
        submit.disabled = false;
      }
    });
    return el("details", { class: "feedback" }, [el("summary", { text: "Rate this answer" }), form]);
  }

  /** " Learned: verbosity detailed · focus areas security" from the preferences, or "". */
  function learned(preferences) {
    if (!preferences || typeof preferences !== "object") return "";
    const parts = [];
    for (const [key, value] of Object.entries(preferences)) {
      if (key === "hint" || value === null || value === "" || (Array.isArray(value) && !value.length)) continue;
      if (typeof value === "object" && !Array.isArray(value)) continue;
      parts.push(`${key.replace(/_/g, " ")} ${Array.isArray(value) ? value.join(", ") : value}`);
    }
    return parts.length ? ` Learned: ${parts.join(" · ")}.` : "";
  }

  // ---------------------------------------------------------------- sending

  function setBusy(busy) {
    state.busy = busy;
    $("#send").disabled = busy;
    $("#stop").hidden = !busy;
    for (const button of document.querySelectorAll(".next-action, #new-chat, .open-session")) button.disabled = busy;
  }

  /** Send one message and stream the reply into a new assistant turn. */
  async function send(text) {
    text = String(text || "").trim();
    if (!text || state.busy) return;
    hideError();
    addUserTurn(text);
    const { turn, bubble } = addTurn("assistant", "Elexirion");
    const progress = el("p", { class: "progress", text: "Routing…" });
    const streamed = document.createTextNode("");
    // The streamed reply: announced politely once it is complete (aria-busy until then).
    const live = el("div", { class: "live", "aria-live": "polite", "aria-busy": "true" }, [
      el("p", { class: "streamed" }, [streamed]),
    ]);
    bubble.append(progress, live);
    setBusy(true);
    announce("Sending your message");
    const controller = new AbortController();
    state.controller = controller;
    const sessionAtSend = state.sessionId;
    try {
      const response = await fetch("/api/agent/chat", {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", Accept: "text/event-stream" },
        body: JSON.stringify({ message: text, session_id: sessionAtSend || undefined, stream: true }),
        signal: controller.signal,
      });
      if (!response.ok) throw await errorOf(response);
      let answer = null;
      if ((response.headers.get("Content-Type") || "").includes("text/event-stream") && response.body) {
        for await (const { event, data } of readSse(response.body)) {
          if (event === "routed") {
            const confidence = typeof data.confidence === "number" ? ` (${data.confidence.toFixed(2)})` : "";
            progress.textContent = `→ ${data.agent} agent${confidence}`;
            turn.querySelector(".who").textContent = `${data.agent} agent`;
            // The session exists from here on: a stopped first turn still continues it.
            if (data.session_id && !state.sessionId) state.sessionId = data.session_id;
          } else if (event === "token") {
            streamed.appendData(String(data.text || ""));
            if (data.step) progress.textContent = `writing (step ${data.step})…`;
            scrollToEnd();
          } else if (event === "response") {
            // The API sends the response itself; tolerate a {response: ...} envelope too.
            answer = data && data.response && typeof data.response === "object" && !data.agent ? data.response : data;
            break;
          } else if (event === "error") {
            const error = (data && data.error) || {};
            throw new ApiError(0, error.code || "error", error.message || "the turn failed");
          }
        }
        if (!answer) throw new ApiError(0, "incomplete", "the reply stream ended before the answer arrived");
      } else {
        answer = await response.json(); // a server that does not stream answers in one piece
      }
      state.sessionId = answer.session_id || sessionAtSend;
      if (state.sessionId) history.replaceState(null, "", `#session=${encodeURIComponent(state.sessionId)}`);
      turn.querySelector(".who").textContent = `${answer.agent || "assistant"} agent`;
      progress.remove();
      bubble.replaceChildren(...renderAnswer(answer, state.sessionId, live));
      announce(`The ${answer.agent || "assistant"} agent answered`);
    } catch (error) {
      progress.remove();
      if (streamed.data) live.setAttribute("aria-busy", "false");
      else live.remove(); // nothing was streamed: no empty paragraph above the error
      bubble.classList.add("turn-error");
      const stopped = error && error.name === "AbortError";
      bubble.append(
        el("p", {}, stopped ? ["You stopped this reply."] : [el("strong", { text: "Error " }), describe(error)]),
        el("button", { type: "button", class: "retry", text: "Try again", onclick: () => send(text) }),
      );
      announce(stopped ? "Reply stopped" : `Error: ${describe(error)}`);
    } finally {
      state.controller = null;
      setBusy(false);
      // A clicked next action was disabled while busy, which drops focus to the body:
      // give keyboard users the message box back instead of the top of the page.
      if (document.activeElement === document.body || !document.activeElement) focusMessage();
      scrollToEnd();
      loadSessions();
    }
  }

  // ------------------------------------------------------------ the drawer

  /** Focus the message box where a keyboard is likely; on a touch screen that would
   *  pop the on-screen keyboard over the conversation unasked. */
  function focusMessage() {
    if (window.matchMedia("(pointer: fine)").matches) $("#message").focus();
  }

  function openDrawer() {
    $("#sessions").classList.add("open");
    $("#sessions-toggle").setAttribute("aria-expanded", "true");
    $("#new-chat").focus();
  }

  function closeDrawer() {
    const drawer = $("#sessions");
    if (!drawer.classList.contains("open")) return;
    drawer.classList.remove("open");
    $("#sessions-toggle").setAttribute("aria-expanded", "false");
  }

  // ------------------------------------------------------------------ wiring

  function init() {
    const message = $("#message");
    $("#composer").addEventListener("submit", (event) => {
      event.preventDefault();
      const text = message.value;
      if (!text.trim() || state.busy) return;
      message.value = "";
      send(text);
    });
    message.addEventListener("keydown", (event) => {
      // Enter sends, Shift+Enter is a newline; an IME composing text keeps its Enter.
      if (event.key === "Enter" && !event.shiftKey && !event.ctrlKey && !event.altKey && !event.metaKey && !event.isComposing) {
        event.preventDefault();
        $("#composer").requestSubmit();
      }
    });
    $("#stop").addEventListener("click", () => state.controller && state.controller.abort());
    $("#new-chat").addEventListener("click", newChat);
    $("#sessions-toggle").addEventListener("click", () => {
      if ($("#sessions").classList.contains("open")) closeDrawer();
      else openDrawer();
    });
    document.addEventListener("keydown", (event) => {
      if (event.key !== "Escape") return;
      if ($("#sessions").classList.contains("open")) {
        closeDrawer();
        $("#sessions-toggle").focus();
      } else if (state.busy && state.controller) {
        state.controller.abort();
      }
    });
    const match = /^#session=(.+)$/.exec(window.location.hash);
    if (match) openSession(decodeURIComponent(match[1]));
    loadSessions();
    focusMessage();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
