// The Triggerfish web console: pages drawn from the /v1 API's JSON, one per hash route
// (#/functions, #/functions/NAME, #/stream, #/invocations/ID, #/chains/ID,
// #/executions, #/executions/ID, #/topics, #/costs, #/nodes). The token a person signs in with stays in this tab's
// sessionStorage and goes to the API as a bearer token; the API checks every request.
// Text from the API is only ever set as text (never parsed as HTML).
"use strict";

const TOKEN_KEY = "triggerfish.token";
const SVG = "http://www.w3.org/2000/svg";
const STATUSES = ["ok", "error", "timeout", "oom", "crashed", "throttled"];
const STREAM_ROWS = 200;
const main = document.getElementById("main");

let session = null; // {token, who, can: {check: bool}}
let pageAbort = null; // aborts the fetches and the stream of the page shown
let flash = null; // a message for the next page drawn

class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

// ---- building the page ----------------------------------------------------------

function build(el, attrs, children) {
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

function h(tag, attrs, ...children) {
  return build(document.createElement(tag), attrs, children);
}

function s(tag, attrs, ...children) {
  return build(document.createElementNS(SVG, tag), attrs, children);
}

function table(headings, rows, attrs) {
  return h("table", attrs || {},
    h("thead", {}, h("tr", {}, headings.map((text) => h("th", {}, text)))),
    h("tbody", {}, rows));
}

function card(title, ...children) {
  return h("section", {class: "card"}, title ? h("h2", {}, title) : null, children);
}

function show(...nodes) {
  const notice = flash ? h("p", {class: "notice", role: "status"}, flash) : null;
  flash = null;
  main.replaceChildren(...[notice, ...nodes].flat(Infinity).filter(Boolean));
}

function errorBox(error) {
  return h("p", {class: "error", role: "alert"}, error.message || String(error));
}

const enc = encodeURIComponent;
const now = () => Date.now() / 1000;

function pad(n) {
  return String(n).padStart(2, "0");
}

function fmtTime(unix) {
  if (unix === null || unix === undefined) return "—";
  const d = new Date(unix * 1000);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
    `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

function fmtMs(ms) {
  if (ms === null || ms === undefined) return "—";
  return ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${ms.toFixed(1)} ms`;
}

function fmtCost(value, currency) {
  return `${value.toFixed(value && value < 0.01 ? 6 : 2)} ${currency || "USD"}`;
}

function fmtRate(perSecond) {
  if (!perSecond) return "0";
  return perSecond >= 10 ? perSecond.toFixed(0) : perSecond.toFixed(2);
}

function statusBadge(status) {
  return h("span", {class: `status status-${status}`}, status);
}

function pretty(text) {
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    return text;
  }
}

function decodeBase64(text) {
  const bytes = Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
  return new TextDecoder().decode(bytes);
}

function sleep(ms, signal) {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener("abort", () => { clearTimeout(timer); resolve(); }, {once: true});
  });
}

// ---- the API ------------------------------------------------------------------------

async function problem(response) {
  let detail = `${response.status} ${response.statusText}`;
  try {
    const doc = await response.json();
    detail = doc.detail || doc.title || JSON.stringify(doc);
  } catch {
    // not JSON: keep the status line
  }
  if (response.status === 401 && session) signOut(detail);
  return new ApiError(response.status, detail);
}

async function api(path, options = {}) {
  const {method = "GET", body, headers = {}, raw = false, token} = options;
  const response = await fetch(path, {
    method,
    body,
    headers: {Authorization: `Bearer ${token || session.token}`, ...headers},
    signal: options.signal || (pageAbort && pageAbort.signal),
  });
  if (raw) return response;
  if (!response.ok) throw await problem(response);
  return response.status === 204 ? null : response.json();
}

// Whether the signed-in credential may do each of ``checks`` ("action" or
// "action:resource"); asked once per check and remembered for the session.
async function may(...checks) {
  const unknown = checks.filter((check) => !(check in session.can));
  if (unknown.length) {
    const query = unknown.map((check) => `can=${enc(check)}`).join("&");
    Object.assign(session.can, (await api(`/v1/whoami?${query}`)).can);
  }
  return checks.every((check) => session.can[check]);
}

// ---- signing in ---------------------------------------------------------------------

function signOut(message) {
  sessionStorage.removeItem(TOKEN_KEY);
  session = null;
  showSignIn(message);
}

function showSignIn(message) {
  document.getElementById("nav").hidden = true;
  document.getElementById("sign-out").hidden = true;
  document.getElementById("who").textContent = "";
  const input = h("input", {
    type: "password", id: "token", name: "token", autocomplete: "off", required: true,
    placeholder: "tfk_…",
  });
  const error = h("p", {class: "error", role: "alert"}, message || "");
  const submit = async (event) => {
    event.preventDefault();
    const token = input.value.trim();
    try {
      const who = await api("/v1/whoami", {token});
      sessionStorage.setItem(TOKEN_KEY, token);
      session = {token, who, can: {}};
      enter();
    } catch (failure) {
      error.textContent = failure.message;
    }
  };
  main.replaceChildren(h("form", {class: "card signin", onsubmit: submit},
    h("h1", {}, "Sign in"),
    h("p", {}, "An API token: the admin token is in the data directory's admin.token; ",
      "`triggerfish tokens create --scope read` makes one that may only look."),
    h("label", {for: "token"}, "API token"), input,
    h("button", {type: "submit"}, "Sign in"), error));
  input.focus();
}

function enter() {
  document.getElementById("nav").hidden = false;
  document.getElementById("sign-out").hidden = false;
  const who = session.who;
  document.getElementById("who").textContent =
    `${who.label} · ${who.permissions.join(", ") || "no permissions"}`;
  render();
}

// ---- routing ------------------------------------------------------------------------

const ROUTES = [
  [/^\/functions$/, "functions", pageFunctions],
  [/^\/functions\/([^/]+)$/, "functions", pageFunction],
  [/^\/stream$/, "stream", pageStream],
  [/^\/invocations\/([^/]+)$/, "stream", pageInvocation],
  [/^\/chains\/([^/]+)$/, "stream", pageChain],
  [/^\/executions$/, "executions", pageExecutions],
  [/^\/executions\/([^/]+)$/, "executions", pageExecution],
  [/^\/topics$/, "topics", pageTopics],
  [/^\/costs$/, "costs", pageCosts],
  [/^\/nodes$/, "nodes", pageNodes],
];

async function render() {
  if (pageAbort) pageAbort.abort();
  pageAbort = new AbortController();
  const signal = pageAbort.signal;
  if (!session) {
    showSignIn();
    return;
  }
  const [path, query = ""] = (location.hash.replace(/^#/, "") || "/functions").split("?");
  for (const [pattern, section, page] of ROUTES) {
    const match = path.match(pattern);
    if (!match) continue;
    for (const link of document.querySelectorAll("#nav a")) {
      link.classList.toggle("active", link.dataset.page === section);
    }
    main.replaceChildren(h("p", {class: "muted"}, "Loading…"));
    try {
      await page(new URLSearchParams(query), signal, ...match.slice(1).map(decodeURIComponent));
    } catch (error) {
      if (!signal.aborted && session) show(errorBox(error));
    }
    return;
  }
  show(h("h1", {}, "Not found"), h("p", {}, h("a", {href: "#/functions"}, "Functions")));
}

// ---- invocations, as rows -----------------------------------------------------------

const INVOCATION_HEADINGS = [
  "Started", "Function", "Status", "Duration", "Cold start", "Attempt", "Error",
];

function invocationRow(record) {
  return h("tr", {"data-invocation": record.id, "data-status": record.status},
    h("td", {}, h("a", {href: `#/invocations/${enc(record.id)}`}, fmtTime(record.started_at))),
    h("td", {}, h("a", {href: `#/functions/${enc(record.function)}`}, record.function)),
    h("td", {}, statusBadge(record.status)),
    h("td", {class: "num"}, fmtMs(record.duration_ms)),
    h("td", {}, record.cold_start ? `yes (${fmtMs(record.init_duration_ms)})` : "no"),
    h("td", {class: "num"}, record.attempt),
    h("td", {}, record.error_type ? `${record.error_type}: ${record.error_message || ""}` : ""));
}

function invocationTable(records, attrs) {
  return table(INVOCATION_HEADINGS, records.map(invocationRow), attrs);
}

// ---- functions ----------------------------------------------------------------------

async function pageFunctions() {
  const day = Math.floor(now() - 86400);
  const [listed, costs, recent] = await Promise.all([
    api("/v1/functions"),
    api(`/v1/costs?since=${day}`),
    api(`/v1/invocations?since=${day}&limit=1000`),
  ]);
  const described = await Promise.all(
    listed.functions.map((fn) => api(`/v1/functions/${enc(fn.name)}`)));
  const costOf = Object.fromEntries(costs.functions.map((item) => [item.function, item]));
  const failed = recent.invocations.filter((r) => r.status !== "ok");
  const rows = described.map((fn) => {
    const numbers = Object.fromEntries(fn.versions.map((v) => [v.version, v.number]));
    const cost = costOf[fn.name];
    const failures = failed.filter((r) => r.function === fn.name).length;
    return h("tr", {"data-function": fn.name},
      h("td", {}, h("a", {href: `#/functions/${enc(fn.name)}`}, fn.name)),
      h("td", {class: "num"}, fn.versions.length),
      h("td", {}, Object.entries(fn.aliases).map(([alias, version]) =>
        h("span", {class: "pill"}, `${alias} → #${numbers[version] ?? "?"}`))),
      h("td", {}, fn.triggers.length ? fn.triggers.map((t) =>
        h("div", {}, `${t.topic} `, h("span", {class: "muted"},
          `backlog ${t.backlog}, in flight ${t.in_flight}`))) : h("span", {class: "muted"}, "none")),
      h("td", {class: failures ? "num bad" : "num"}, failures),
      h("td", {class: "num"}, cost ? cost.requests : 0),
      h("td", {class: "num"}, fmtCost(cost ? cost.cost : 0, costs.currency)));
  });
  show(
    h("h1", {}, "Functions"),
    described.length
      ? table(["Function", "Versions", "Aliases", "Triggers", "Failures (24 h)",
        "Requests (24 h)", "Cost (24 h)"], rows, {id: "functions"})
      : h("p", {class: "muted"}, "No function is deployed: `triggerfish deploy` one."),
    card("Recent failures", failed.length
      ? invocationTable(failed.slice(0, 10), {id: "recent-failures"})
      : h("p", {class: "muted"}, "None in the last 24 hours.")));
}

async function pageFunction(params, signal, name) {
  const [fn, invocations, allowed, executions] = await Promise.all([
    api(`/v1/functions/${enc(name)}`),
    api(`/v1/invocations?function=${enc(name)}&limit=50`),
    may(`invoke:${name}:live`),
    api(`/v1/executions?function=${enc(name)}&limit=10`),
  ]);
  const numbers = Object.fromEntries(fn.versions.map((v) => [v.version, v.number]));
  const versions = [...fn.versions].sort((a, b) => b.number - a.number);
  show(
    h("h1", {}, fn.name),
    h("p", {class: "muted"}, `created ${fmtTime(fn.created_at)} · updated ${fmtTime(fn.updated_at)} · `,
      h("a", {href: `#/stream?function=${enc(name)}`}, "follow its invocations live")),
    allowed ? invokeCard(fn, numbers) : card("Invoke",
      h("p", {class: "muted", id: "invoke-refused"},
        `${session.who.label} may not invoke ${fn.name}.`)),
    card("Versions", table(["#", "Version", "Created", "Runtime", "Handler", "Memory", "Timeout"],
      versions.map((v) => h("tr", {},
        h("td", {class: "num"}, v.number), h("td", {class: "mono"}, v.version),
        h("td", {}, fmtTime(v.created_at)), h("td", {}, v.config.runtime ?? ""),
        h("td", {class: "mono"}, v.config.handler ?? ""),
        h("td", {class: "num"}, v.config.memory ? `${v.config.memory} MB` : ""),
        h("td", {class: "num"}, v.config.timeout ? `${v.config.timeout} s` : ""))))),
    card("Aliases", Object.keys(fn.aliases).length
      ? h("ul", {}, Object.entries(fn.aliases).map(([alias, version]) =>
        h("li", {}, h("b", {}, alias), ` → #${numbers[version] ?? "?"} `,
          h("span", {class: "mono muted"}, version))))
      : h("p", {class: "muted"}, "none")),
    card("Triggers", fn.triggers.length
      ? table(["Trigger", "Topic", "Filters", "Retry", "Dead letters", "Backlog", "In flight",
        "Waiting retry"], fn.triggers.map((t) => h("tr", {},
        h("td", {class: "mono"}, t.id), h("td", {}, t.topic),
        h("td", {class: "mono"}, t.filters.length ? JSON.stringify(t.filters) : "all events"),
        h("td", {}, `${t.retry.max_attempts} attempts`), h("td", {}, t.dead_letter),
        h("td", {class: "num"}, t.backlog), h("td", {class: "num"}, t.in_flight),
        h("td", {class: "num"}, t.waiting_retry))), {id: "triggers"})
      : h("p", {class: "muted"}, "none: it runs when invoked")),
    executions.executions.length ? card("Durable executions",
      executionTable(executions.executions, {id: "function-executions"}),
      h("p", {}, h("a", {href: `#/executions?function=${enc(name)}`}, "all its executions")))
      : null,
    card("Invocations", invocations.invocations.length
      ? invocationTable(invocations.invocations, {id: "invocations"})
      : h("p", {class: "muted"}, "none yet")));
}

function invokeCard(fn, numbers) {
  const qualifier = h("select", {id: "qualifier", name: "qualifier"},
    Object.keys(fn.aliases).map((alias) => h("option", {value: alias}, alias)),
    Object.values(numbers).sort((a, b) => b - a).map((n) =>
      h("option", {value: String(n)}, `version #${n}`)));
  const payload = h("textarea", {id: "payload", name: "payload", rows: 6, spellcheck: "false"},
    "{}");
  const outcome = h("div", {id: "invoke-result", "aria-live": "polite"});
  const button = h("button", {type: "submit"}, "Invoke");
  const submit = async (event) => {
    event.preventDefault();
    try {
      JSON.parse(payload.value);
    } catch (error) {
      outcome.replaceChildren(h("p", {class: "error"}, `The payload is not JSON: ${error.message}`));
      return;
    }
    button.disabled = true;
    outcome.replaceChildren(h("p", {class: "muted"}, "Running…"));
    try {
      const url = `/v1/functions/${enc(fn.name)}/invoke?qualifier=${enc(qualifier.value)}`;
      const response = await api(url, {
        method: "POST", raw: true, body: payload.value,
        headers: {"Content-Type": "application/json"},
      });
      if (!response.ok) throw await problem(response);
      const id = response.headers.get("x-triggerfish-invocation-id");
      const status = response.headers.get("x-triggerfish-status");
      const duration = Number(response.headers.get("x-triggerfish-duration-ms"));
      outcome.replaceChildren(
        h("p", {}, statusBadge(status), ` in ${fmtMs(duration)} · version `,
          h("span", {class: "mono"}, response.headers.get("x-triggerfish-executed-version")),
          " · ", h("a", {href: `#/invocations/${enc(id)}`}, "open the invocation")),
        h("pre", {class: status === "ok" ? "result" : "result failed"},
          pretty(await response.text())));
    } catch (error) {
      if (error.name !== "AbortError") outcome.replaceChildren(errorBox(error));
    } finally {
      button.disabled = false;
    }
  };
  return card("Invoke", h("form", {id: "invoke", onsubmit: submit},
    h("label", {for: "qualifier"}, "Alias or version"), qualifier,
    h("label", {for: "payload"}, "Payload (JSON)"), payload, button), outcome);
}

// ---- the live stream ----------------------------------------------------------------

function parseEvent(block) {
  const event = {event: "message", data: [], id: null};
  for (const line of block.split("\n")) {
    if (!line || line.startsWith(":")) continue;
    const at = line.indexOf(":");
    const field = at < 0 ? line : line.slice(0, at);
    const value = at < 0 ? "" : line.slice(at + 1).replace(/^ /, "");
    if (field === "data") event.data.push(value);
    else if (field === "event") event.event = value;
    else if (field === "id") event.id = value;
  }
  return {...event, data: event.data.join("\n")};
}

// Follows a server-sent-events URL with the token (EventSource cannot send one),
// reconnecting from the last event id after a break.
async function follow(url, signal, onInvocation, onState) {
  let last = null;
  while (!signal.aborted) {
    try {
      const headers = last ? {"Last-Event-ID": last} : {};
      const response = await api(url, {raw: true, headers, signal});
      if (!response.ok) throw await problem(response);
      onState("live", "Live");
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "";
      for (;;) {
        const {value, done} = await reader.read();
        if (done) break;
        buffer += value;
        let end;
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          const event = parseEvent(buffer.slice(0, end));
          buffer = buffer.slice(end + 2);
          if (event.id) last = event.id;
          if (event.event === "invocation") onInvocation(JSON.parse(event.data));
        }
      }
    } catch (error) {
      if (signal.aborted) return;
      if (error instanceof ApiError && error.status < 500) {
        onState("broken", error.message);
        return;
      }
    }
    onState("waiting", "Reconnecting…");
    await sleep(1000, signal);
  }
}

async function pageStream(params, signal) {
  const listed = await api("/v1/functions");
  const chosen = {function: params.get("function") || "", status: params.get("status") || ""};
  const change = () => {
    const query = new URLSearchParams(
      Object.entries({function: fnSelect.value, status: statusSelect.value}).filter(([, v]) => v));
    location.hash = `#/stream${query.size ? `?${query}` : ""}`;
  };
  const option = (value, text, selected) => h("option", {value, selected}, text);
  const fnSelect = h("select", {id: "stream-function", onchange: change},
    option("", "every function", !chosen.function),
    listed.functions.map((fn) => option(fn.name, fn.name, fn.name === chosen.function)));
  const statusSelect = h("select", {id: "stream-status", onchange: change},
    option("", "any status", !chosen.status),
    STATUSES.map((status) => option(status, status, status === chosen.status)));
  const state = h("span", {id: "stream-state", class: "state-waiting"}, "Connecting…");
  const rows = h("tbody", {});
  const empty = h("p", {class: "muted"}, "Invocations appear here as they end.");
  show(
    h("h1", {}, "Live invocations"),
    h("form", {class: "filters", onsubmit: (event) => event.preventDefault()},
      h("label", {for: "stream-function"}, "Function"), fnSelect,
      h("label", {for: "stream-status"}, "Status"), statusSelect, state),
    h("table", {id: "stream"},
      h("thead", {}, h("tr", {}, INVOCATION_HEADINGS.map((text) => h("th", {}, text)))), rows),
    empty);
  const query = new URLSearchParams(Object.entries(chosen).filter(([, v]) => v));
  await follow(`/v1/invocations/stream?${query}`, signal, (record) => {
    empty.remove();
    rows.prepend(invocationRow(record));
    while (rows.children.length > STREAM_ROWS) rows.lastElementChild.remove();
  }, (kind, text) => {
    state.className = `state-${kind}`;
    state.textContent = text;
  });
}

// ---- one invocation -----------------------------------------------------------------

function fields(pairs) {
  return h("dl", {class: "fields"}, pairs.map(([term, value]) =>
    [h("dt", {}, term), h("dd", {}, value)]));
}

// The event an invocation of a topic trigger ran on, from the trigger's topic around
// the time it started; null when it is not there (retention, or not a topic's).
async function findEvent(record, eventId) {
  if (!record.trigger) return null;
  const triggers = (await api(`/v1/triggers?function=${enc(record.function)}`)).triggers;
  const trigger = triggers.find((t) => t.id === record.trigger);
  if (!trigger) return null;
  const since = Math.floor(record.started_at - 3600);
  const page = await api(`/v1/topics/${enc(trigger.topic)}/events?since=${since}&limit=1000`);
  const found = page.events.find((item) => item.event.id === eventId);
  return found ? {topic: trigger.topic, ...found} : null;
}

// An invocation is recorded a moment after it ends (the recorder writes every 0.2 s):
// one opened from an invoke's answer may not be there yet, so look again for a while.
async function recorded(id, signal) {
  for (let tries = 1; ; tries++) {
    try {
      return await api(`/v1/invocations/${enc(id)}`);
    } catch (error) {
      if (!(error instanceof ApiError) || error.status !== 404 || tries === 10) throw error;
    }
    await sleep(300, signal);
  }
}

async function pageInvocation(params, signal, id) {
  const r = await recorded(id, signal);
  const events = await Promise.all(r.event_ids.map(async (eventId) => {
    let found = null;
    try {
      found = await findEvent(r, eventId);
    } catch (error) {
      if (error.name === "AbortError") throw error;
    }
    return h("div", {class: "event"},
      h("p", {}, h("span", {class: "mono"}, eventId), " · ",
        h("a", {href: `#/chains/${enc(eventId)}`}, "its chain"),
        found ? ` · on ${found.topic} at offset ${found.offset}` : ""),
      found ? h("pre", {}, JSON.stringify(found.event, null, 2))
        : h("p", {class: "muted"}, "Its body is not on the trigger's topic any more."));
  }));
  const result = r.result_base64 ? pretty(decodeBase64(r.result_base64)) : null;
  show(
    h("h1", {}, "Invocation ", h("span", {class: "mono"}, r.id)),
    h("p", {}, statusBadge(r.status), " ",
      h("a", {href: `#/chains/${enc(r.id)}`}, "show the chain of events it belongs to")),
    card("Summary", fields([
      ["Function", h("a", {href: `#/functions/${enc(r.function)}`}, r.function)],
      ["Version", h("span", {class: "mono"}, r.version)],
      ["Trigger", r.trigger || "direct invoke"],
      ["Attempt", r.attempt],
      ["Started", fmtTime(r.started_at)],
      ["Duration", fmtMs(r.duration_ms)],
      ["Billed duration", fmtMs(r.billed_duration_ms)],
      ["Memory", `${r.max_memory_used_mb} MB used of ${r.memory_size_mb} MB`],
      ["Cold start", r.cold_start ? `yes, init ${fmtMs(r.init_duration_ms)}` : "no"],
      ["Request", `${r.request_bytes} bytes`],
    ])),
    r.error_type ? card("Error", h("p", {class: "error"}, `${r.error_type}: ${r.error_message || ""}`),
      r.stack_trace.length ? h("pre", {}, r.stack_trace.join("")) : null) : null,
    result !== null ? card("Result", h("pre", {id: "result"}, result)) : null,
    card("Events", events.length ? events : h("p", {class: "muted"}, "A direct invoke: no event.")),
    card("Logs", h("pre", {id: "logs"}, r.logs || "(nothing logged)")));
}

// ---- the chain of events ------------------------------------------------------------

const BOX = {width: 200, height: 66, across: 260, down: 86, margin: 24};

// Layers left to right: each node one layer after the furthest of its causes.
function layers(chain) {
  const incoming = new Map(chain.nodes.map((n) => [n.id, []]));
  for (const edge of chain.edges) {
    if (incoming.has(edge.to) && incoming.has(edge.from)) incoming.get(edge.to).push(edge.from);
  }
  const layer = new Map();
  const depth = (id, seen) => {
    if (layer.has(id)) return layer.get(id);
    if (seen.has(id)) return 0; // a cycle: never expected, but never loop
    seen.add(id);
    const value = Math.max(-1, ...incoming.get(id).map((from) => depth(from, seen))) + 1;
    layer.set(id, value);
    return value;
  };
  chain.nodes.forEach((n) => depth(n.id, new Set()));
  return layer;
}

function nodeTime(node) {
  return node.kind === "event" ? Date.parse(node.time || "") / 1000 || 0 : node.started_at || 0;
}

function drawChain(chain) {
  const layer = layers(chain);
  const columns = [];
  for (const node of [...chain.nodes].sort((a, b) => nodeTime(a) - nodeTime(b))) {
    const at = layer.get(node.id);
    (columns[at] = columns[at] || []).push(node);
  }
  const place = new Map();
  columns.forEach((column, x) => column.forEach((node, y) => place.set(node.id, {
    x: BOX.margin + x * BOX.across, y: BOX.margin + y * BOX.down,
  })));
  const tallest = Math.max(1, ...columns.map((column) => column.length));
  const width = BOX.margin * 2 + (columns.length - 1) * BOX.across + BOX.width;
  const height = BOX.margin * 2 + (tallest - 1) * BOX.down + BOX.height;
  const edges = chain.edges.filter((e) => place.has(e.from) && place.has(e.to)).map((edge) => {
    const a = place.get(edge.from);
    const b = place.get(edge.to);
    const x1 = a.x + BOX.width;
    const y1 = a.y + BOX.height / 2;
    const x2 = b.x;
    const y2 = b.y + BOX.height / 2;
    const bend = (x2 - x1) / 2;
    return s("path", {
      class: "edge", "marker-end": "url(#arrow)",
      d: `M${x1},${y1} C${x1 + bend},${y1} ${x2 - bend},${y2} ${x2},${y2}`,
    });
  });
  const boxes = chain.nodes.map((node) => {
    const {x, y} = place.get(node.id);
    const failed = node.kind === "invocation" && node.status !== "ok";
    const lines = node.kind === "event"
      ? [node.type, `on ${node.topic}`, node.source]
      : [`${node.function} · ${String(node.version).slice(0, 10)}`,
        `${node.status} · ${fmtMs(node.duration_ms)}`,
        [node.cold_start ? "cold start" : "warm", node.attempt > 1 ? `attempt ${node.attempt}` : "",
          node.error_type || ""].filter(Boolean).join(" · ")];
    const box = s("g", {
      class: `node ${node.kind}${failed ? " failed" : ""}`, "data-node": node.id,
      transform: `translate(${x},${y})`,
    },
    s("title", {}, `${node.kind} ${node.id}`),
    s("rect", {width: BOX.width, height: BOX.height, rx: 6}),
    lines.map((text, i) => s("text", {x: 10, y: 20 + i * 17, class: i ? "detail" : "head"},
      String(text ?? "").slice(0, 30))));
    if (node.kind !== "invocation") return box;
    return s("a", {href: `#/invocations/${enc(node.id)}`}, box);
  });
  return s("svg", {
    id: "chain", width, height, viewBox: `0 0 ${width} ${height}`, role: "img",
    "aria-label": `the chain of ${chain.nodes.length} events and invocations`,
  },
  s("defs", {}, s("marker", {
    id: "arrow", viewBox: "0 0 10 10", refX: 10, refY: 5, markerWidth: 8, markerHeight: 8,
    orient: "auto-start-reverse",
  }, s("path", {d: "M0,0 L10,5 L0,10 z"}))),
  edges, boxes);
}

async function pageChain(params, signal, id) {
  let chain;
  try {
    chain = await api(`/v1/chains/${enc(id)}`);
  } catch (error) {
    if (error.status === 404) {
      show(h("h1", {}, "Chain"), errorBox(error));
      return;
    }
    throw error;
  }
  const failures = chain.nodes.filter((n) => n.kind === "invocation" && n.status !== "ok");
  show(
    h("h1", {}, "Chain ", h("span", {class: "mono"}, chain.correlation || chain.id)),
    h("p", {class: "muted"},
      `${chain.nodes.length} nodes, ${failures.length} failed`,
      chain.truncated ? " · truncated: the chain is longer than shown" : ""),
    h("div", {class: "chart"}, drawChain(chain)),
    card("Nodes", table(["Kind", "What", "When", "Outcome"], chain.nodes.map((n) => h("tr", {},
      h("td", {}, n.kind),
      h("td", {}, n.kind === "event" ? `${n.type} on ${n.topic}`
        : h("a", {href: `#/invocations/${enc(n.id)}`}, `${n.function} v${n.version}`)),
      h("td", {}, n.kind === "event" ? n.time || "" : fmtTime(n.started_at)),
      h("td", {}, n.kind === "event" ? "" : [statusBadge(n.status), ` ${fmtMs(n.duration_ms)}`]))))));
}

// ---- durable executions -------------------------------------------------------------

const EXECUTION_STATUSES = ["RUNNING", "SUCCEEDED", "FAILED", "TIMED_OUT", "STOPPED"];
const BAR = {label: 230, width: 640, height: 22, gap: 6, margin: 10};

function executionSeconds(record) {
  return (record.ended_at ?? now()) - record.started_at;
}

function executionRow(record) {
  return h("tr", {"data-execution": record.id, "data-status": record.status},
    h("td", {}, h("a", {href: `#/executions/${enc(record.id)}`}, fmtTime(record.started_at))),
    h("td", {}, h("a", {href: `#/functions/${enc(record.function)}`}, record.function)),
    h("td", {}, statusBadge(record.status.toLowerCase())),
    h("td", {class: "num"}, fmtMs(executionSeconds(record) * 1000),
      record.ended_at === null ? " so far" : ""),
    h("td", {class: "mono"}, record.name === record.id ? "" : record.name));
}

function executionTable(records, attrs) {
  return table(["Started", "Function", "Status", "Duration", "Name"],
    records.map(executionRow), attrs);
}

async function pageExecutions(params) {
  const chosen = {function: params.get("function") || "", status: params.get("status") || ""};
  const query = new URLSearchParams(Object.entries(chosen).filter(([, v]) => v));
  const [listed, found] = await Promise.all([
    api("/v1/functions"), api(`/v1/executions?${query}&limit=200`),
  ]);
  const change = () => {
    const next = new URLSearchParams(
      Object.entries({function: fnSelect.value, status: statusSelect.value}).filter(([, v]) => v));
    location.hash = `#/executions${next.size ? `?${next}` : ""}`;
  };
  const option = (value, text, selected) => h("option", {value, selected}, text);
  const fnSelect = h("select", {id: "executions-function", onchange: change},
    option("", "every function", !chosen.function),
    listed.functions.map((fn) => option(fn.name, fn.name, fn.name === chosen.function)));
  const statusSelect = h("select", {id: "executions-status", onchange: change},
    option("", "any status", !chosen.status),
    EXECUTION_STATUSES.map((status) => option(status, status, status === chosen.status)));
  show(
    h("h1", {}, "Durable executions"),
    h("form", {class: "filters", onsubmit: (event) => event.preventDefault()},
      h("label", {for: "executions-function"}, "Function"), fnSelect,
      h("label", {for: "executions-status"}, "Status"), statusSelect),
    found.executions.length
      ? executionTable(found.executions, {id: "executions"})
      : h("p", {class: "muted"}, "No durable execution here: a function deployed with ",
        "`durable:` starts one each time it is invoked."));
}

// Operations in the order of the log, each child right after its parent, with its depth.
function operationTree(operations) {
  const children = new Map();
  for (const op of operations) {
    const parent = op.parent_id || "";
    (children.get(parent) || children.set(parent, []).get(parent)).push(op);
  }
  const known = new Set(operations.map((op) => op.id));
  const ordered = [];
  const visit = (op, depth) => {
    ordered.push({op, depth});
    for (const child of children.get(op.id) || []) visit(child, depth + 1);
  };
  for (const op of operations) {
    if (!op.parent_id || !known.has(op.parent_id)) visit(op, 0);
  }
  return ordered;
}

function operationLabel(op) {
  const kind = op.type === "CONTEXT" && op.sub_type ? op.sub_type.toLowerCase() : op.type.toLowerCase();
  return op.type === "EXECUTION" ? "execution" : `${op.name || op.id} · ${kind.replace("_", " ")}`;
}

function operationDetail(op) {
  const retries = op.attempt > 1 ? `${op.attempt - 1} retr${op.attempt === 2 ? "y" : "ies"}` : "none";
  return [
    h("h2", {}, operationLabel(op), " ", statusBadge(op.status.toLowerCase())),
    fields([
      ["Id", h("span", {class: "mono"}, op.id)],
      ["Started", fmtTime(op.started_at)],
      ["Ended", fmtTime(op.ended_at)],
      ["Duration", op.ended_at ? fmtMs((op.ended_at - op.started_at) * 1000) : "—"],
      ["Retries", retries],
      op.scheduled_end ? ["Scheduled end", fmtTime(op.scheduled_end)] : null,
      op.callback_id ? ["Callback", h("span", {class: "mono"}, op.callback_id)] : null,
    ].filter(Boolean)),
    op.error ? h("pre", {class: "result failed"}, JSON.stringify(op.error, null, 2)) : null,
    op.result !== null && op.result !== undefined
      ? h("pre", {class: "result"}, pretty(op.result)) : null,
  ];
}

// One bar per operation from its start to its end (to now, or to when it is due, while
// it runs); failed ones red, retried ones marked; a click shows its result or error.
function drawTimeline(execution, rows, onPick) {
  const start = execution.started_at;
  const ends = rows.map(({op}) => op.ended_at ?? op.scheduled_end ?? now());
  const span = Math.max(0.001, Math.max(execution.ended_at ?? now(), ...ends) - start);
  const x = (t) => BAR.label + ((t - start) / span) * BAR.width;
  const width = BAR.label + BAR.width + 90;
  const height = BAR.margin * 2 + rows.length * (BAR.height + BAR.gap);
  const bars = rows.map(({op, depth}, i) => {
    const y = BAR.margin + i * (BAR.height + BAR.gap);
    const from = op.started_at ?? start;
    const running = op.ended_at === null || op.ended_at === undefined;
    const to = running ? (op.scheduled_end ?? now()) : op.ended_at;
    const failed = ["FAILED", "TIMED_OUT", "STOPPED", "CANCELLED"].includes(op.status);
    const retried = op.attempt > 1;
    const duration = running ? "running" : fmtMs((to - from) * 1000);
    return s("g", {
      class: `bar ${op.type.toLowerCase()}${failed ? " failed" : ""}${running ? " running" : ""}`,
      "data-operation": op.id, "data-name": op.name || "", "data-duration": duration,
      transform: `translate(0,${y})`, tabindex: 0, role: "button",
      onclick: () => onPick(op), onkeydown: (event) => event.key === "Enter" && onPick(op),
    },
    s("title", {}, `${operationLabel(op)}: ${op.status}, ${duration}`),
    s("rect", {class: "row", x: 0, y: 0, width, height: BAR.height}),
    s("text", {x: 4 + depth * 14, y: 15, class: "label"}, operationLabel(op).slice(0, 34)),
    s("rect", {class: "span", x: x(from), y: 2, height: BAR.height - 4, rx: 3,
      width: Math.max(2, x(to) - x(from))}),
    retried ? s("text", {x: x(to) + 6, y: 15, class: "retries"}, `×${op.attempt}`) : null,
    s("text", {x: x(to) + (retried ? 30 : 6), y: 15, class: "duration"}, duration));
  });
  const ticks = [0, 0.25, 0.5, 0.75, 1].map((f) => s("g", {},
    s("line", {x1: x(start + f * span), x2: x(start + f * span), y1: 0, y2: height, class: "tick"}),
    s("text", {x: x(start + f * span) + 2, y: height - 1, class: "axis"},
      `+${fmtMs(f * span * 1000)}`)));
  return s("svg", {
    id: "timeline", width, height: height + 4, viewBox: `0 0 ${width} ${height + 4}`, role: "img",
    "aria-label": `the timeline of ${rows.length} operations`,
  }, ticks, bars);
}

async function pageExecution(params, signal, id) {
  const execution = await api(`/v1/executions/${enc(id)}`);
  const rows = operationTree(execution.operations);
  const detail = h("div", {id: "operation", "aria-live": "polite"},
    h("p", {class: "muted"}, "Pick an operation to see its result or error."));
  const pick = (op) => {
    for (const bar of document.querySelectorAll("#timeline .bar")) {
      bar.classList.toggle("picked", bar.dataset.operation === op.id);
    }
    detail.replaceChildren(...operationDetail(op).filter(Boolean));
  };
  const failures = execution.operations.filter((op) => op.status === "FAILED").length;
  show(
    h("h1", {}, "Execution ", h("span", {class: "mono"}, execution.name)),
    h("p", {}, statusBadge(execution.status.toLowerCase()), " ",
      h("a", {href: `#/functions/${enc(execution.function)}`}, execution.function),
      ` version ${execution.version} · started ${fmtTime(execution.started_at)} · `,
      `${fmtMs(executionSeconds(execution) * 1000)}${execution.ended_at === null ? " so far" : ""}`,
      ` · ${execution.operations.length} operations, ${failures} failed`),
    card("Timeline", h("div", {class: "chart"}, drawTimeline(execution, rows, pick)), detail),
    card("Input", h("pre", {id: "execution-input"}, pretty(execution.input))),
    execution.error ? card("Error", h("pre", {class: "result failed", id: "execution-error"},
      JSON.stringify(execution.error, null, 2))) : null,
    execution.result !== null ? card("Result",
      h("pre", {id: "execution-result"}, pretty(execution.result))) : null,
    h("p", {class: "muted mono"}, execution.arn));
}

// ---- topics and dead letters --------------------------------------------------------

async function redrive(topic, event) {
  try {
    const one = event === undefined ? "" : `?event=${enc(event)}`;
    const done = await api(`/v1/dlq/${enc(topic)}/redrive${one}`, {method: "POST"});
    flash = `Redrove ${done.redriven} event${done.redriven === 1 ? "" : "s"} of ${topic}` +
      (done.skipped ? `; ${done.skipped} skipped: their trigger is gone` : "");
  } catch (error) {
    if (error.name === "AbortError") return;
    flash = error.message;
  }
  render();
}

async function pageTopics() {
  const [listed, dead, canRedrive] = await Promise.all([
    api("/v1/topics"), api("/v1/dlq"), may("deploy"),
  ]);
  const topics = await Promise.all(listed.topics.map((t) => api(`/v1/topics/${enc(t.name)}`)));
  const retention = (seconds) => seconds === null ? "forever" : `${Math.round(seconds / 3600)} h`;
  const waiting = dead.dead_letters.filter((dlq) => dlq.pending || dlq.events.length);
  const empty = dead.dead_letters.filter((dlq) => !waiting.includes(dlq)).map((dlq) => dlq.topic);
  const letters = waiting.map((dlq) => card(null,
    h("h2", {}, dlq.topic, " ", h("span", {class: "muted"}, `${dlq.pending} waiting`)),
    canRedrive && dlq.pending
      ? h("button", {type: "button", class: "redrive-all", onclick: () => redrive(dlq.topic)},
        "Redrive all") : null,
    dlq.events.length ? table(
      ["Offset", "Event", "Type", "Error", "Attempts", "Trigger", "Dead-lettered",
        ...(canRedrive ? [""] : [])],
      dlq.events.map((item) => h("tr", {"data-event": item.event.id},
        h("td", {class: "num"}, item.offset),
        h("td", {}, h("a", {href: `#/chains/${enc(item.event.id)}`, class: "mono"},
          item.event.id)),
        h("td", {}, item.event.type),
        h("td", {class: "bad"}, `${item.event.errortype || ""}: ${item.event.errormessage || ""}`),
        h("td", {class: "num"}, item.event.errorattempts ?? ""),
        h("td", {class: "mono"}, item.event.errortrigger || ""),
        h("td", {}, fmtTime(item.published_at)),
        canRedrive ? h("td", {}, h("button", {type: "button", class: "redrive-one",
          onclick: () => redrive(dlq.topic, item.event.id)}, "Redrive")) : null)),
      {class: "dead-letters", "data-topic": dlq.topic})
      : h("p", {class: "muted"}, "Nothing waits here.")));
  show(
    h("h1", {}, "Topics"),
    table(["Topic", "Events", "Retention", "Events/s (last minute)",
      "Triggers: backlog / in flight / waiting retry"],
      topics.map((t) => h("tr", {"data-topic": t.name},
        h("td", {}, t.name), h("td", {class: "num"}, t.count), h("td", {}, retention(t.retention)),
        h("td", {class: "num rate"}, fmtRate(t.rate)),
        h("td", {}, t.triggers.filter((g) => !g.trigger.startsWith("_")).map((g) =>
          h("div", {}, h("span", {class: "mono"}, g.trigger),
            ` ${g.backlog} / ${g.in_flight} / ${g.waiting_retry}`))))), {id: "topics"}),
    h("h1", {}, "Dead letters"),
    letters,
    empty.length ? h("p", {class: "muted", id: "empty-dead-letters"},
      `Nothing waits in ${empty.join(", ")}.`) : null);
}

// ---- costs and performance ----------------------------------------------------------

const RANGES = {
  "1h": {seconds: 3600, buckets: 12, label: "last hour"},
  "24h": {seconds: 86400, buckets: 24, label: "last 24 hours"},
  "7d": {seconds: 7 * 86400, buckets: 28, label: "last 7 days"},
};
const PALETTE = ["#2a7ab0", "#e0803a", "#3a9a5a", "#b04a8a", "#8a6ad0", "#c0a030", "#4aa8b0"];

function percentile(sorted, p) {
  if (!sorted.length) return null;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

function costChart(buckets, names, currency) {
  const width = 760;
  const height = 240;
  const left = 70;
  const bottom = 24;
  const top = 12;
  const totals = buckets.map((b) => b.report.functions.reduce((sum, f) => sum + f.cost, 0));
  const most = Math.max(...totals) || 1;
  const slot = (width - left) / buckets.length;
  const scale = (value) => (value / most) * (height - bottom - top);
  const bars = buckets.map((bucket, i) => {
    let y = height - bottom;
    return bucket.report.functions.map((f) => {
      const tall = scale(f.cost);
      y -= tall;
      return s("rect", {
        x: left + i * slot + 2, y, width: Math.max(1, slot - 4), height: tall,
        fill: PALETTE[names.indexOf(f.function) % PALETTE.length],
      }, s("title", {}, `${f.function}, ${fmtTime(bucket.since)}: ${fmtCost(f.cost, currency)}, ` +
        `${f.requests} requests`));
    });
  });
  const labels = buckets.map((bucket, i) => i % Math.ceil(buckets.length / 6) ? null
    : s("text", {x: left + i * slot, y: height - 6, class: "axis"},
      fmtTime(bucket.since).slice(5, 16)));
  return s("svg", {id: "cost-chart", width, height, viewBox: `0 0 ${width} ${height}`,
    role: "img", "aria-label": "cost over time per function"},
  s("line", {x1: left, x2: width, y1: height - bottom, y2: height - bottom, class: "axis"}),
  s("text", {x: 0, y: top + 10, class: "axis"}, fmtCost(most, currency)),
  s("text", {x: 0, y: height - bottom, class: "axis"}, "0"),
  bars, labels);
}

async function pageCosts(params) {
  const range = RANGES[params.get("range")] ? params.get("range") : "24h";
  const {seconds, buckets: count} = RANGES[range];
  const until = Math.ceil(now());
  const since = until - seconds;
  const [total, sample] = await Promise.all([
    api(`/v1/costs?since=${since}&until=${until}&periods=${count}`),
    api(`/v1/invocations?since=${since}&limit=1000`),
  ]);
  const buckets = total.periods.map((report) => ({since: report.since, report}));
  const names = total.functions.map((f) => f.function);
  const byFunction = new Map();
  for (const r of sample.invocations) {
    (byFunction.get(r.function) || byFunction.set(r.function, []).get(r.function)).push(r);
  }
  const minutes = seconds / 60;
  const chooser = h("select", {id: "range", onchange: (event) => {
    location.hash = `#/costs?range=${event.target.value}`;
  }}, Object.entries(RANGES).map(([key, r]) =>
    h("option", {value: key, selected: key === range}, r.label)));
  show(
    h("h1", {}, "Costs"),
    h("form", {class: "filters"}, h("label", {for: "range"}, "Period"), chooser),
    card("Estimated cost per function",
      h("div", {class: "chart"}, costChart(buckets, names, total.currency)),
      h("p", {class: "legend"}, names.map((name, i) => h("span", {},
        h("i", {class: `swatch c${i % PALETTE.length}`}), name))),
      table(["Function", "Requests", "Errors", "Cold starts", "GB-seconds", "Cost"],
        [...total.functions, {...total.total, function: "all"}].map((f) => h("tr", {},
          h("td", {}, f.function), h("td", {class: "num"}, f.requests),
          h("td", {class: "num"}, f.errors), h("td", {class: "num"}, f.cold_starts),
          h("td", {class: "num"}, f.gb_seconds.toFixed(3)),
          h("td", {class: "num"}, fmtCost(f.cost, total.currency)))), {id: "costs"})),
    card("Performance",
      h("p", {class: "muted"}, sample.invocations.length === 1000
        ? "From the latest 1000 invocations of the period." : "From every invocation of the period."),
      table(["Function", "Invocations", "Per minute", "p50", "p99", "Cold starts", "Failures"],
        [...byFunction.entries()].map(([name, records]) => {
          const durations = records.map((r) => r.duration_ms).sort((a, b) => a - b);
          return h("tr", {},
            h("td", {}, name), h("td", {class: "num"}, records.length),
            h("td", {class: "num"}, (records.length / minutes).toFixed(2)),
            h("td", {class: "num"}, fmtMs(percentile(durations, 50))),
            h("td", {class: "num"}, fmtMs(percentile(durations, 99))),
            h("td", {class: "num"}, records.filter((r) => r.cold_start).length),
            h("td", {class: "num"}, records.filter((r) => r.status !== "ok").length));
        }), {id: "performance"})));
}

// ---- nodes --------------------------------------------------------------------------

async function pageNodes() {
  const listed = await api("/v1/nodes");
  show(
    h("h1", {}, "Nodes"),
    table(["Node", "Address", "Version", "State", "Started", "Heartbeat", "Load"],
      listed.nodes.map((n) => h("tr", {"data-node": n.id},
        h("td", {class: "mono"}, n.id, n.this ? h("span", {class: "pill"}, "this one") : ""),
        h("td", {}, n.address), h("td", {}, n.version), h("td", {}, statusBadge(n.state)),
        h("td", {}, fmtTime(n.started_at)), h("td", {}, `${n.heartbeat_age.toFixed(1)} s ago`),
        h("td", {class: "mono"}, Object.entries(n.info || {}).map(([k, v]) =>
          `${k}: ${typeof v === "object" ? JSON.stringify(v) : v}`).join(", ")))),
      {id: "nodes"}));
}

// ---- start --------------------------------------------------------------------------

document.getElementById("sign-out").addEventListener("click", () => signOut());
window.addEventListener("hashchange", render);

(async () => {
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (!token) {
    showSignIn();
    return;
  }
  try {
    session = {token, who: await api("/v1/whoami", {token}), can: {}};
    enter();
  } catch (error) {
    signOut(error.message);
  }
})();
