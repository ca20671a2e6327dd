// Elexirion dashboard. Vanilla ES2020, no build step, no chart library: the charts
// are SVG drawn here. Polls GET /api/metrics every 2 s (short polling) while the
// page is visible; every figure from the server goes into the page as text.
"use strict";

(() => {
  const POLL_MS = 2000;
  const LATENCY_SAMPLES = 150; // 5 minutes of polls for the latency chart
  // The SVG namespace as the HTML parser assigns it, so no URL-shaped literal is needed
  // in this file (the assets are checked for having none).
  const SVG_NS = new DOMParser().parseFromString("<svg></svg>", "text/html").querySelector("svg").namespaceURI;

  const $ = (selector) => document.querySelector(selector);
  const latencyHistory = []; // [{t: epoch ms, p50, p95}], one per successful poll
  let timer = null;
  let failing = false;
  let lastMetrics = null; // redrawn at the new width when the window is resized

  // ------------------------------------------------------------------ helpers

  function el(tag, attrs = {}, children = []) {
    const node = document.createElement(tag);
    setAttrs(node, attrs);
    for (const child of [].concat(children)) if (child !== null && child !== undefined) node.append(child);
    return node;
  }

  function svg(tag, attrs = {}, children = []) {
    const node = document.createElementNS(SVG_NS, tag);
    setAttrs(node, attrs);
    for (const child of [].concat(children)) if (child !== null && child !== undefined) node.append(child);
    return node;
  }

  function setAttrs(node, attrs) {
    for (const [key, value] of Object.entries(attrs)) {
      if (value === undefined || value === null || value === false) continue;
      if (key === "text") node.textContent = String(value);
      else if (key === "class") node.setAttribute("class", value);
      else node.setAttribute(key, String(value));
    }
  }

  const number = (value) => (typeof value === "number" && Number.isFinite(value) ? value : null);
  const fmtInt = (value) => (number(value) === null ? "—" : Math.round(value).toLocaleString());
  const fmtPct = (value) => (number(value) === null ? "—" : `${(value * 100).toFixed(1)} %`);
  const fmtUsd = (value) => (number(value) === null ? "—" : `$${value.toFixed(4)}`);
  function fmtMs(value) {
    if (number(value) === null) return "—";
    return value < 1000 ? `${Math.round(value)} ms` : `${(value / 1000).toFixed(2)} s`;
  }
  function fmtClock(date, seconds = false) {
    return date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: seconds ? "2-digit" : undefined });
  }
  function fmtWhen(value) {
    if (value === null || value === undefined || value === "") return "";
    const date = typeof value === "number" ? new Date(value < 1e12 ? value * 1000 : value) : new Date(value);
    return Number.isNaN(date.getTime()) ? String(value) : date.toLocaleString();
  }

  /** The smallest "nice" axis maximum (1, 2, 5 × 10^n) at or above ``value``. */
  function niceMax(value) {
    if (!(value > 0)) return 1;
    const power = 10 ** Math.floor(Math.log10(value));
    for (const step of [1, 2, 5, 10]) if (step * power >= value) return step * power;
    return 10 * power;
  }

  function empty(text) {
    return el("p", { class: "empty", text });
  }

  /** A table: columns are [header, cell(row) -> text or Node, {num: bool}]. */
  function table(caption, columns, rows) {
    return el("table", { class: "data" }, [
      el("caption", { class: "visually-hidden", text: caption }),
      el("thead", {}, el("tr", {}, columns.map(([head, , opts]) => el("th", { scope: "col", class: opts && opts.num ? "num" : null, text: head })))),
      el(
        "tbody",
        {},
        rows.map((row) =>
          el(
            "tr",
            {},
            columns.map(([, cell, opts]) => {
              const value = cell(row);
              return el("td", { class: opts && opts.num ? "num" : null }, value instanceof Node ? value : String(value ?? ""));
            }),
          ),
        ),
      ),
    ]);
  }

  function stateBadge(stateName) {
    const text = String(stateName || "unknown");
    return el("span", { class: `state state-${text.replace(/[^a-z_]/gi, "")}`, text: text.replace(/_/g, " ") });
  }

  // ------------------------------------------------------------------ charts

  /** Drawn at the container's pixel width (text stays 11 px); 600 before layout. */
  function widthOf(container) {
    return Math.max(280, Math.floor(container.clientWidth || 600));
  }

  /** Stacked bars of runs per minute (succeeded + failed) over the last 30 minutes. */
  function runsChart(perMinute, width) {
    const rows = (Array.isArray(perMinute) ? perMinute : []).filter((r) => r && number(r.minute) !== null);
    const byMinute = new Map(rows.map((r) => [Math.floor(r.minute / 60) * 60, r]));
    const now = Math.floor(Date.now() / 60000) * 60;
    const last = rows.length ? Math.max(now, ...byMinute.keys()) : now;
    // 30 slots ending at the latest minute, so gaps (minutes without runs) show as zero.
    const slots = Array.from({ length: 30 }, (_, i) => {
      const minute = last - (29 - i) * 60;
      const row = byMinute.get(minute) || {};
      const count = number(row.count) || 0;
      const failed = Math.min(number(row.failed) || 0, count);
      return { minute, count, failed };
    });
    const height = 180;
    const left = 34;
    const bottom = 20;
    const top = 8;
    const plotH = height - bottom - top;
    const max = niceMax(Math.max(...slots.map((s) => s.count)));
    const slotW = (width - left - 4) / slots.length;
    const total = slots.reduce((sum, s) => sum + s.count, 0);
    const failedTotal = slots.reduce((sum, s) => sum + s.failed, 0);
    const y = (value) => top + plotH - (value / max) * plotH;
    const children = [
      svg("title", { text: `Runs per minute: ${total} in 30 minutes, ${failedTotal} failed` }),
    ];
    for (const tick of [0, max / 2, max]) {
      children.push(svg("line", { class: "grid", x1: left, x2: width, y1: y(tick), y2: y(tick) }));
      children.push(svg("text", { x: left - 4, y: y(tick) + 4, "text-anchor": "end", text: Number.isInteger(tick) ? tick : tick.toFixed(1) }));
    }
    slots.forEach((slot, i) => {
      const x = left + i * slotW + 1;
      const w = Math.max(slotW - 2, 1);
      const ok = slot.count - slot.failed;
      const label = `${fmtClock(new Date(slot.minute * 1000))}: ${slot.count} run(s), ${slot.failed} failed`;
      const group = svg("g", {}, [svg("title", { text: label })]);
      if (ok > 0) group.append(svg("rect", { class: "bar-ok", x, width: w, y: y(slot.count), height: y(slot.failed) - y(slot.count) }));
      if (slot.failed > 0) group.append(svg("rect", { class: "bar-failed", x, width: w, y: y(slot.failed), height: y(0) - y(slot.failed) }));
      children.push(group);
      // A few time labels (fewer when narrow); the first and last anchored inwards so
      // they are not clipped.
      const marks = width >= 500 ? { 0: "start", 10: "middle", 20: "middle", 29: "end" } : { 0: "start", 15: "middle", 29: "end" };
      const anchor = marks[i];
      if (anchor) {
        const at = { start: x, middle: x + w / 2, end: x + w }[anchor];
        children.push(svg("text", { x: at, y: height - 4, "text-anchor": anchor, text: fmtClock(new Date(slot.minute * 1000)) }));
      }
    });
    children.push(svg("line", { class: "axis", x1: left, x2: width, y1: y(0), y2: y(0) }));
    return svg(
      "svg",
      {
        class: "chart",
        id: "runs-svg",
        width,
        height,
        viewBox: `0 0 ${width} ${height}`,
        role: "img",
        "aria-label": `Runs per minute over the last 30 minutes: ${total} runs, ${failedTotal} failed; ${slots[29].count} in the latest minute.`,
        "data-total": total,
      },
      children,
    );
  }

  /** p50 and p95 turn latency as two lines over the polls since the page opened. */
  function latencyChart(samples, width) {
    if (samples.length < 2) return empty("Collecting samples…");
    const height = 180;
    const left = 50;
    const bottom = 20;
    const top = 8;
    const plotH = height - bottom - top;
    const max = niceMax(Math.max(...samples.map((s) => Math.max(s.p50 || 0, s.p95 || 0))));
    const t0 = samples[0].t;
    const span = Math.max(samples[samples.length - 1].t - t0, 1);
    const x = (t) => left + ((t - t0) / span) * (width - left - 4);
    const y = (value) => top + plotH - (value / max) * plotH;
    const path = (key) =>
      samples
        .filter((s) => number(s[key]) !== null)
        .map((s, i) => `${i ? "L" : "M"}${x(s.t).toFixed(1)},${y(s[key]).toFixed(1)}`)
        .join(" ");
    const latest = samples[samples.length - 1];
    const children = [svg("title", { text: "Turn latency p50 and p95" })];
    for (const tick of [0, max / 2, max]) {
      children.push(svg("line", { class: "grid", x1: left, x2: width, y1: y(tick), y2: y(tick) }));
      children.push(svg("text", { x: left - 4, y: y(tick) + 4, "text-anchor": "end", text: fmtMs(tick) }));
    }
    children.push(svg("text", { x: left, y: height - 4, text: fmtClock(new Date(t0), true) }));
    children.push(svg("text", { x: width, y: height - 4, "text-anchor": "end", text: fmtClock(new Date(latest.t), true) }));
    children.push(svg("path", { class: "line-p50", d: path("p50") }));
    children.push(svg("path", { class: "line-p95", d: path("p95") }));
    return svg(
      "svg",
      {
        class: "chart",
        width,
        height,
        viewBox: `0 0 ${width} ${height}`,
        role: "img",
        "aria-label": `Turn latency now: p50 ${fmtMs(latest.p50)}, p95 ${fmtMs(latest.p95)}.`,
      },
      children,
    );
  }

  /** A small horizontal bar (share of the largest value) for a table cell. */
  function shareBar(value, max, label) {
    const width = 100;
    const fraction = max > 0 ? Math.max(0, Math.min(1, value / max)) : 0;
    return svg("svg", { class: "chart", viewBox: `0 0 ${width} 10`, width, height: 10, role: "img", "aria-label": label }, [
      svg("rect", { class: "hbar", x: 0, y: 0, height: 10, width: (fraction * width).toFixed(1) }),
    ]);
  }

  // ------------------------------------------------------------------ panels

  function renderTiles(metrics, providers) {
    const turns = metrics.turns || {};
    const latency = turns.latency_ms || {};
    const windowMin = number(metrics.window_s) ? Math.round(metrics.window_s / 60) : null;
    $("#turns-label").textContent = windowMin ? `Turns (last ${windowMin} min)` : "Turns";
    $("#turns-count").textContent = fmtInt(turns.count);
    const perMinute = number(turns.per_minute);
    $("#turns-per-minute").textContent =
      perMinute === null ? "—" : Number.isInteger(perMinute) ? String(perMinute) : perMinute.toFixed(2);
    $("#success-rate").textContent = fmtPct(turns.success_rate);
    $("#latency-p50").textContent = fmtMs(latency.p50);
    $("#latency-p95").textContent = fmtMs(latency.p95);
    $("#latency-p99").textContent = fmtMs(latency.p99);
    const sum = (key) => providers.reduce((total, [, p]) => total + (number(p[key]) || 0), 0);
    $("#total-cost").textContent = fmtUsd(sum("cost_usd"));
    $("#total-tokens").textContent = fmtInt(sum("tokens_in") + sum("tokens_out"));
  }

  function renderProviders(providers) {
    if (!providers.length) return empty("No provider calls in the window.");
    const tokens = (p) => (number(p.tokens_in) || 0) + (number(p.tokens_out) || 0);
    const maxTokens = Math.max(...providers.map(([, p]) => tokens(p)));
    return table("Cost and tokens per provider", [
      ["Provider", ([name]) => name],
      ["Calls", ([, p]) => fmtInt(p.calls), { num: true }],
      ["Tokens in", ([, p]) => fmtInt(p.tokens_in), { num: true }],
      ["Tokens out", ([, p]) => fmtInt(p.tokens_out), { num: true }],
      ["Cost", ([, p]) => fmtUsd(p.cost_usd), { num: true }],
      ["Token share", ([name, p]) => shareBar(tokens(p), maxTokens, `${name}: ${tokens(p)} tokens`)],
    ], providers);
  }

  function renderBreakers(breakers) {
    const rows = Object.entries(breakers || {});
    if (!rows.length) return empty("No circuit breakers yet (no provider called).");
    return table("Circuit breaker state per provider and model", [
      ["Provider/model", ([name]) => name],
      ["State", ([, state]) => stateBadge(state)],
    ], rows);
  }

  function renderStats(stats, what) {
    const rows = Object.entries(stats || {});
    if (!rows.length) return empty(`No ${what} in the window.`);
    return table(`Figures per ${what}`, [
      ["Name", ([name]) => name],
      ["Count", ([, s]) => fmtInt(s.count), { num: true }],
      ["Success", ([, s]) => fmtPct(s.success_rate), { num: true }],
      ["p50", ([, s]) => fmtMs(s.p50_ms), { num: true }],
      ["Cost", ([, s]) => fmtUsd(s.cost_usd), { num: true }],
    ], rows);
  }

  function renderTree(tree) {
    if (!Array.isArray(tree) || !tree.length) return empty("No actor tree reported.");
    return table("Supervised actors with their restart counts", [
      [
        "Path",
        (row) => {
          const path = String(row.path || "");
          const depth = Math.max(0, path.split("/").filter(Boolean).length - 1);
          const cell = el("code", { text: path });
          cell.style.paddingLeft = `${depth}em`; // indentation shows the supervision tree
          return cell;
        },
      ],
      ["Class", (row) => row.class || ""],
      ["State", (row) => stateBadge(row.state)],
      ["Restarts", (row) => el("span", { class: row.restarts > 0 ? "restarted" : null, text: fmtInt(row.restarts) }), { num: true }],
      ["Node", (row) => row.node || ""],
      ["PID", (row) => (row.pid === null || row.pid === undefined ? "" : String(row.pid)), { num: true }],
    ], tree);
  }

  function renderErrors(errors) {
    if (!Array.isArray(errors) || !errors.length) return empty("No errors recently.");
    const rows = [...errors].sort((a, b) => (number(b.at) || 0) - (number(a.at) || 0));
    return table("Most recent errors first", [
      ["When", (row) => fmtWhen(row.at)],
      ["Where", (row) => row.where || ""],
      ["Code", (row) => el("code", { text: row.code || "" })],
      ["Message", (row) => row.message || ""],
    ], rows);
  }

  function drawCharts() {
    if (!lastMetrics) return;
    const runs = $("#runs-chart");
    runs.replaceChildren(runsChart(lastMetrics.runs_per_minute, widthOf(runs)));
    const latency = $("#latency-chart");
    latency.replaceChildren(latencyChart(latencyHistory, widthOf(latency)));
  }

  function render(metrics) {
    const providers = Object.entries(metrics.by_provider || {});
    renderTiles(metrics, providers);
    const latency = (metrics.turns && metrics.turns.latency_ms) || {};
    latencyHistory.push({ t: Date.now(), p50: number(latency.p50), p95: number(latency.p95) });
    if (latencyHistory.length > LATENCY_SAMPLES) latencyHistory.shift();
    lastMetrics = metrics;
    drawCharts();
    $("#providers").replaceChildren(renderProviders(providers));
    $("#breakers").replaceChildren(renderBreakers(metrics.breakers));
    $("#agents").replaceChildren(renderStats(metrics.by_agent, "agent"));
    $("#pipelines").replaceChildren(renderStats(metrics.by_pipeline, "pipeline"));
    $("#tree").replaceChildren(renderTree(metrics.tree));
    $("#recent-errors").replaceChildren(renderErrors(metrics.recent_errors));
  }

  // ------------------------------------------------------------------ polling

  async function fetchMetrics() {
    let response;
    try {
      response = await fetch("/api/metrics", { credentials: "same-origin", headers: { Accept: "application/json" } });
    } catch (error) {
      throw new Error(`cannot reach the server (${error.message})`);
    }
    if (response.ok) return response.json();
    let message = `${response.status} ${response.statusText}`;
    try {
      const body = await response.json();
      if (body && body.error) message = `${response.status} ${body.error.code}: ${body.error.message}`;
    } catch (_) {
      // not JSON: keep the status line
    }
    if (response.status === 401) $("#login-notice").hidden = false;
    throw new Error(message);
  }

  async function poll() {
    timer = null;
    try {
      const metrics = await fetchMetrics();
      render(metrics);
      $("#login-notice").hidden = true;
      $("#error-banner").hidden = true;
      failing = false;
      $("#dash-status").textContent = `Updated ${new Date().toLocaleTimeString()} · refreshes every ${POLL_MS / 1000} s`;
    } catch (error) {
      // Shown once per outage (an alert every 2 s would drown a screen reader).
      if (!failing) {
        const banner = $("#error-banner");
        banner.replaceChildren(el("strong", { text: "Cannot load the metrics: " }), error.message);
        banner.hidden = false;
      }
      failing = true;
      $("#dash-status").textContent = `Last attempt failed at ${new Date().toLocaleTimeString()}; retrying every ${POLL_MS / 1000} s`;
    } finally {
      if (!document.hidden) timer = setTimeout(poll, POLL_MS);
    }
  }

  let resizing = null;
  window.addEventListener("resize", () => {
    clearTimeout(resizing);
    resizing = setTimeout(drawCharts, 150);
  });

  // A hidden tab stops polling; showing it again polls at once.
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden && timer === null) poll();
  });

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", poll);
  else poll();
})();
