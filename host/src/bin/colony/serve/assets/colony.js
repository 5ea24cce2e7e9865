// The live view of `colony serve`. Everything a guest wrote (tasks, summaries, events,
// conversations) is set as text (textContent), never parsed as HTML.
"use strict";

const STATES = ["pending", "queued", "running", "completed", "failed", "stopped", "interrupted"];
const ACTIVE = new Set(["pending", "queued", "running"]);
const PAGE = 50;
/** The most events a worker page keeps on screen (the oldest go first). */
const MAX_EVENTS = 5000;
/** The most characters of streamed model text, turns and errors kept on screen. */
const MAX_STREAM = 65536;
const MAX_ITEMS = 1000;
/** How long to wait before opening a stream the server refused (503, 404, …). */
const RETRY_AFTER_MS = 3000;

// ---- token: from the URL the server printed, kept for this tab only ----------------
const token = (() => {
  const url = new URL(location.href);
  const given = url.searchParams.get("token");
  if (given) {
    sessionStorage.setItem("colony-token", given);
    url.searchParams.delete("token");
    history.replaceState(null, "", url.pathname + url.search + url.hash);
  }
  return sessionStorage.getItem("colony-token") || "";
})();

function $(id) {
  return document.getElementById(id);
}

/** An element with attributes and children; strings become text nodes. */
function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value !== undefined && value !== null) node.setAttribute(name, String(value));
  }
  for (const child of children) {
    if (child === undefined || child === null) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/** A URL of this server, carrying the token where the server needs it for reads. */
function withToken(path) {
  if (!token) return path;
  const url = new URL(path, location.origin);
  url.searchParams.set("token", token);
  return url.pathname + url.search;
}

async function api(path, options) {
  const init = Object.assign({ headers: {} }, options || {});
  if (token) init.headers["Authorization"] = "Bearer " + token;
  const response = await fetch(path, init);
  let body = null;
  try {
    body = await response.json();
  } catch (_) {
    body = null;
  }
  if (!response.ok) {
    const why = body && body.error ? body.error : response.statusText;
    throw new Error(response.status === 401 ? "refused: the token is missing or wrong" : why);
  }
  return body;
}

function notice(text, kind) {
  const node = $("notice");
  node.textContent = text;
  node.className = kind || "";
}

function setupTokenForm() {
  const form = $("token-form");
  if (!form) return;
  form.hidden = Boolean(token);
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    sessionStorage.setItem("colony-token", $("token-input").value.trim());
    location.reload();
  });
}

async function control(path, body) {
  try {
    const answer = await api(path, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body || {}),
    });
    const outcome = answer.answer ? answer.answer.outcome : (answer.answers || []).map((a) => a.outcome).join("; ");
    notice("done: " + (outcome || "requested"), "ok");
    return true;
  } catch (e) {
    notice(e.message, "error");
    return false;
  }
}

/**
 * A live stream that shows whether it is connected. The browser reconnects a dropped
 * stream itself (sending Last-Event-ID); one the server refused it gives up on, so it
 * is opened again here, from `path()` (which may name where to resume).
 */
function live(path, handlers) {
  const badge = $("live");
  const stream = { source: null, closed: false };
  function open() {
    const source = new EventSource(withToken(path()));
    stream.source = source;
    source.onopen = () => {
      badge.textContent = "live";
      badge.className = "live on";
      document.body.dataset.live = "open";
    };
    source.onerror = () => {
      badge.textContent = "reconnecting…";
      badge.className = "live off";
      document.body.dataset.live = "closed";
      if (source.readyState === EventSource.CLOSED && !stream.closed) {
        setTimeout(() => stream.closed || open(), RETRY_AFTER_MS);
      }
    };
    for (const [name, handle] of Object.entries(handlers)) {
      source.addEventListener(name, (e) => handle(JSON.parse(e.data), e));
    }
  }
  open();
  return {
    close() {
      stream.closed = true;
      stream.source.close();
    },
  };
}

/** Removes the first children of `list` past `max`. */
function keep(list, max) {
  while (list.children.length > max) list.firstElementChild.remove();
}

function time(text) {
  return text ? new Date(text).toLocaleTimeString() : "";
}

function seconds(value) {
  return value === null || value === undefined ? "" : value.toFixed(2) + " s";
}

function ofBudget(used, budget) {
  if (used === null || used === undefined) return budget ? "– / " + budget : "";
  return budget ? used + " / " + budget : String(used);
}

// ---- the worker list ------------------------------------------------------------------
function indexPage() {
  const view = { state: "", offset: 0, total: 0 };
  let source = null;

  const filters = $("filters");
  for (const state of [""].concat(STATES)) {
    const button = el("button", { type: "button", "data-state": state }, state || "all");
    button.addEventListener("click", () => {
      view.state = state;
      view.offset = 0;
      connect();
    });
    filters.append(button);
  }
  $("prev").addEventListener("click", () => {
    view.offset = Math.max(0, view.offset - PAGE);
    connect();
  });
  $("next").addEventListener("click", () => {
    if (view.offset + PAGE < view.total) {
      view.offset += PAGE;
      connect();
    }
  });
  $("stop-all").addEventListener("click", async () => {
    if (confirm("Stop every worker of every colony on this home?")) {
      notice("stopping all…");
      await control("/api/stop-all");
    }
  });

  function row(w) {
    const stop = el("button", { type: "button", class: "stop danger" }, "stop");
    stop.hidden = !ACTIVE.has(w.state);
    stop.addEventListener("click", () => control("/api/workers/" + encodeURIComponent(w.id) + "/stop"));
    const report = el("td", { class: "report" });
    if (w.report_status) report.append(el("span", { class: "status status-" + w.report_status }, w.report_status), " ");
    if (w.summary) report.append(el("span", { class: "summary" }, w.summary));
    return el(
      "tr",
      { "data-id": w.id, "data-state": w.state, class: w.mode === "persistent" ? "persistent" : "" },
      el("td", {}, el("a", { href: "/workers/" + encodeURIComponent(w.id) }, w.id)),
      el("td", {}, el("span", { class: "state state-" + w.state }, w.state)),
      el("td", {}, w.plugin),
      el("td", { class: "task" }, w.task),
      el("td", {}, time(w.started_at)),
      el("td", {}, seconds(w.duration_seconds)),
      el("td", {}, ofBudget(w.tokens_used, w.token_budget)),
      el("td", {}, ofBudget(w.tool_calls_used, w.tool_call_budget)),
      report,
      el("td", {}, stop),
    );
  }

  function showTotal(total) {
    view.total = total;
    $("total").textContent = "(" + total + (view.state ? " " + view.state : "") + ")";
    const last = Math.min(total, view.offset + PAGE);
    $("range").textContent = total ? view.offset + 1 + "–" + last + " of " + total : "none";
    $("prev").disabled = view.offset === 0;
    $("next").disabled = last >= total;
  }

  function connect() {
    if (source) source.close();
    for (const b of filters.children) b.classList.toggle("selected", b.dataset.state === view.state);
    const query = new URLSearchParams({ state: view.state, offset: view.offset, limit: PAGE });
    source = live(() => "/api/live?" + query, {
      census(colonies) {
        const body = $("colonies").tBodies[0];
        body.replaceChildren(
          ...colonies.map((c) => {
            const total = Object.values(c.states).reduce((a, b) => a + b, 0);
            const states = Object.entries(c.states).map(([s, n]) =>
              el("span", { class: "state state-" + s }, s + " " + n),
            );
            return el(
              "tr",
              { "data-colony": c.colony_id },
              el("td", {}, c.colony_id),
              el("td", {}, String(total)),
              el("td", { class: "states" }, ...states),
              el("td", {}, time(c.first_created)),
              el("td", {}, time(c.last_created)),
            );
          }),
        );
      },
      page(page) {
        $("workers").tBodies[0].replaceChildren(...page.workers.map(row));
        showTotal(page.total);
      },
      rows(delta) {
        const body = $("workers").tBodies[0];
        for (const w of delta.workers) {
          const old = body.querySelector('tr[data-id="' + CSS.escape(w.id) + '"]');
          if (old) old.replaceWith(row(w));
        }
        showTotal(delta.total);
      },
    });
  }
  connect();
}

// ---- one worker ---------------------------------------------------------------------
function workerPage() {
  let id = location.pathname.split("/").pop();
  try {
    id = decodeURIComponent(id);
  } catch (_) {
    // A malformed escape: the id as written (the server will not know it).
  }
  $("worker-id").textContent = id;
  document.title = "Colony: " + id;
  const path = "/api/workers/" + encodeURIComponent(id);
  let lastSeq = 0;
  let lastType = "";
  let received = 0;
  let duplicates = 0;
  let state = "";

  function pairs(target, entries) {
    target.replaceChildren();
    for (const [name, value] of entries) {
      if (value === null || value === undefined || value === "") continue;
      const shown = typeof value === "object" ? JSON.stringify(value, null, 1) : String(value);
      target.append(el("dt", {}, name), el("dd", { "data-field": name }, shown));
    }
  }

  async function loadConversation() {
    try {
      const { conversation } = await api(path);
      $("part-count").textContent = "(" + conversation.total + ")";
      $("conversation").replaceChildren(
        ...conversation.parts.map((p) =>
          el("li", { class: "part role-" + p.role }, el("b", {}, p.role), " ", el("span", {}, p.content || "")),
        ),
      );
    } catch (e) {
      notice(e.message, "error");
    }
  }

  let reloading = null;
  /** Reloads the conversation once the events of a burst are in. */
  function conversationSoon() {
    clearTimeout(reloading);
    reloading = setTimeout(loadConversation, 300);
  }

  function showWorker(view) {
    const w = view.row;
    state = w.state;
    document.body.dataset.state = w.state;
    $("state").textContent = w.state;
    $("state").className = "state state-" + w.state;
    pairs($("details"), [
      ["colony", w.colony_id],
      ["plugin", w.plugin],
      ["mode", w.mode],
      ["task", view.task],
      ["input", view.input],
      ["batch", w.batch ? w.batch.id + " #" + w.batch.index + " of " + w.batch.size : null],
      ["created", w.created_at],
      ["started", w.started_at],
      ["ended", w.ended_at],
      ["duration", seconds(w.duration_seconds)],
      ["tokens", ofBudget(w.tokens_used, w.token_budget)],
      ["tool calls", ofBudget(w.tool_calls_used, w.tool_call_budget)],
    ]);
    // A running persistent worker's latest report stands in for the result it has not yet.
    const latest = view.reports.length ? view.reports[view.reports.length - 1].report : {};
    const result = view.result || latest || {};
    pairs($("report"), [
      ["status", result.status],
      ["summary", result.summary],
      ["data", result.data && Object.keys(result.data).length ? result.data : null],
      ["output", result.output && Object.keys(result.output).length ? result.output : null],
      ["reports", view.report_count > 1 ? view.report_count : null],
    ]);
    const errors = $("errors");
    errors.querySelectorAll("li.result-error").forEach((n) => n.remove());
    if (result.error) errors.append(el("li", { class: "result-error" }, result.error));
    $("stop").hidden = !ACTIVE.has(state);
    $("inject").hidden = state !== "running";
    conversationSoon();
  }

  function showEvent(item) {
    if (item.seq <= lastSeq) {
      duplicates += 1;
      document.body.dataset.duplicates = String(duplicates);
      return;
    }
    lastSeq = item.seq;
    received += 1;
    document.body.dataset.lastSeq = String(item.seq);
    const e = item.event;
    const data = e.data || {};
    if (e.type === "LLM_TEXT_DELTA") {
      // Each model call's text on its own paragraph.
      const stream = $("stream");
      let text = stream.textContent;
      if (lastType !== "LLM_TEXT_DELTA" && text) text += "\n\n";
      text += data.delta || "";
      stream.textContent = text.length > MAX_STREAM ? "…" + text.slice(-MAX_STREAM) : text;
    }
    lastType = e.type;
    if (e.type === "TURN_COMPLETED" || e.type === "TURN_FAILED") {
      conversationSoon();
      $("turns").append(
        el("li", { "data-turn": data.turn, class: e.type === "TURN_FAILED" ? "failed" : "" },
          (data.turn ? "turn " + data.turn + ": " : "") + (data.message || ""),
          e.type === "TURN_FAILED" ? " — failed: " + (data.error || "") : ""),
      );
      keep($("turns"), MAX_ITEMS);
    }
    if (e.type === "EXECUTION_FAILED" || e.type === "TURN_FAILED") {
      $("errors").append(el("li", {}, e.type + ": " + (data.error || JSON.stringify(data))));
      keep($("errors"), MAX_ITEMS);
    }
    let text = JSON.stringify(data);
    if (text.length > 2000) text = text.slice(0, 2000) + "…";
    const list = $("events");
    list.append(
      el("li", { "data-seq": item.seq, "data-type": e.type },
        el("time", {}, time(e.timestamp)), " ", el("b", {}, e.type), " ", el("code", {}, text)),
    );
    keep(list, MAX_EVENTS);
    $("event-count").textContent = "(" + received + ")";
  }

  $("stop").addEventListener("click", () => control(path + "/stop"));
  $("inject").addEventListener("submit", async (e) => {
    e.preventDefault();
    const message = $("message").value;
    if (await control(path + "/inject", { message })) $("message").value = "";
  });
  document.body.dataset.duplicates = "0";
  // First the latest events; after a refused stream, on from the last one shown.
  live(() => path + "/live" + (lastSeq ? "?after=" + lastSeq : ""), { worker: showWorker, event: showEvent });
}

setupTokenForm();
if (document.body.dataset.page === "index") indexPage();
else workerPage();
