// The dashboard's only way to data: the public HTTP API (DESIGN A8), with the bearer token
// kept in sessionStorage, and Server-Sent Events read with fetch so the token can be sent.

const KEY = "flowtide.token";

export class ApiError extends Error {
  /** `errors`: the field errors of a 422 answer, `[{loc, msg, type}]` (else null). */
  constructor(status, code, message, errors = null) {
    super(message);
    this.status = status;
    this.code = code;
    this.errors = errors;
  }
}

export function getToken() {
  try { return sessionStorage.getItem(KEY) || ""; } catch { return ""; }
}

export function forgetToken() {
  try { sessionStorage.removeItem(KEY); } catch { /* storage disabled */ }
}

function headers(extra) {
  const out = { Accept: "application/json", ...extra };
  const token = getToken();
  if (token) out.Authorization = `Bearer ${token}`;
  return out;
}

let asking = null;

/** Show the token dialog until a token the server accepts is entered. */
export function askToken() {
  if (asking) return asking;
  const dialog = document.getElementById("token-dialog");
  const form = document.getElementById("token-form");
  const input = document.getElementById("token-input");
  const error = document.getElementById("token-error");
  asking = new Promise((resolve) => {
    const submit = async (event) => {
      event.preventDefault();
      const token = input.value.trim();
      if (!token) return;
      const r = await fetch("/api/flows", { headers: { Authorization: `Bearer ${token}` } });
      if (r.status === 401) {
        error.textContent = "The server did not accept this token.";
        input.select();
        return;
      }
      try { sessionStorage.setItem(KEY, token); } catch { /* storage disabled */ }
      form.removeEventListener("submit", submit);
      dialog.close();
      asking = null;
      resolve(token);
    };
    form.addEventListener("submit", submit);
    dialog.addEventListener("cancel", (event) => event.preventDefault());
    error.textContent = "";
    dialog.showModal();
    input.focus();
  });
  return asking;
}

/** fetch a JSON API route; a 401 asks for the token and tries again. */
export async function api(path, { method = "GET", body, signal } = {}) {
  for (;;) {
    const init = { method, signal, headers: headers(body !== undefined ? { "Content-Type": "application/json" } : {}) };
    if (body !== undefined) init.body = JSON.stringify(body);
    const r = await fetch(path, init);
    if (r.status === 401) {
      forgetToken();
      await askToken();
      continue;
    }
    const text = await r.text();
    let data = null;
    try { data = text ? JSON.parse(text) : null; } catch { data = null; }
    if (!r.ok) {
      const err = (data && data.error) || {};
      throw new ApiError(r.status, err.code || "http_error", err.message || `HTTP ${r.status}`, Array.isArray(err.errors) ? err.errors : null);
    }
    return data;
  }
}

/** Every item of a list route, following next_cursor (up to `max` items). */
export async function listAll(path, { max = 10000, limit = 500 } = {}) {
  const items = [];
  let cursor = null;
  do {
    const sep = path.includes("?") ? "&" : "?";
    const page = await api(`${path}${sep}limit=${limit}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`);
    items.push(...page.items);
    cursor = page.next_cursor;
  } while (cursor && items.length < max);
  return items;
}

const listeners = new Set();
let openStreams = 0;
let brokenStreams = 0;

/** Subscribe to the connection state of the live streams: "live", "reconnecting" or "". */
export function onLiveChange(fn) {
  listeners.add(fn);
}

function announce() {
  const state = brokenStreams > 0 ? "reconnecting" : openStreams > 0 ? "live" : "";
  for (const fn of listeners) fn(state);
}

/**
 * Follow an SSE route with fetch + a stream reader (EventSource cannot send the token).
 * Reconnects after a dropped connection with Last-Event-ID = the last id seen, until
 * `close()` is called or `done()` returns true when the server ends the stream.
 * onMessage({id, event, data}) gets each message with data parsed as JSON.
 */
export function stream(path, { onMessage, lastId = null, done = () => false, onOpen } = {}) {
  const controller = new AbortController();
  let closed = false;
  let retry = 1000;
  let counted = false;
  let broken = false;
  const setBroken = (value) => {
    if (value !== broken) { brokenStreams += value ? 1 : -1; broken = value; announce(); }
  };

  async function connect() {
    while (!closed) {
      try {
        const extra = { Accept: "text/event-stream" };
        if (lastId !== null) extra["Last-Event-ID"] = String(lastId);
        const r = await fetch(path, { headers: headers(extra), signal: controller.signal, cache: "no-store" });
        if (r.status === 401) { forgetToken(); await askToken(); continue; }
        if (!r.ok || !r.body) throw new Error(`HTTP ${r.status}`);
        setBroken(false);
        // "live" only once the server has answered: from then on nothing is missed
        if (!counted) { openStreams += 1; counted = true; announce(); }
        retry = 1000;
        if (onOpen) onOpen();
        await read(r.body);
        if (done()) break;
      } catch (err) {
        if (closed || err.name === "AbortError") break;
        setBroken(true);
      }
      if (closed) break;
      await new Promise((resolve) => setTimeout(resolve, retry));
      retry = Math.min(retry * 2, 10000);
    }
    finish();
  }

  async function read(body) {
    const reader = body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const { value, done: end } = await reader.read();
      if (end) break;
      buffer += decoder.decode(value, { stream: true }).replace(/\r\n?/g, "\n");
      let cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        dispatch(block);
      }
    }
  }

  function dispatch(block) {
    let id = null, event = "message";
    const data = [];
    for (const line of block.split("\n")) {
      if (!line || line.startsWith(":")) continue;
      const colon = line.indexOf(":");
      const name = colon < 0 ? line : line.slice(0, colon);
      let value = colon < 0 ? "" : line.slice(colon + 1);
      if (value.startsWith(" ")) value = value.slice(1);
      if (name === "id") id = value;
      else if (name === "event") event = value;
      else if (name === "data") data.push(value);
    }
    if (!data.length) return;
    if (id !== null) lastId = id;
    let parsed;
    try { parsed = JSON.parse(data.join("\n")); } catch { parsed = data.join("\n"); }
    onMessage({ id, event, data: parsed });
  }

  function finish() {
    setBroken(false);
    if (counted) { openStreams -= 1; counted = false; announce(); }
  }

  connect();
  return {
    close() { closed = true; controller.abort(); },
    get lastId() { return lastId; },
  };
}
