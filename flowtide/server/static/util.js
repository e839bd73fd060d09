// Small DOM and formatting helpers shared by the pages.

/** h("div.panel", {attrs}, ...children): an element; children may be strings, nodes or arrays. */
export function h(tag, attrs, ...children) {
  const [name, ...classes] = tag.split(".");
  const el = document.createElement(name || "div");
  if (classes.length) el.className = classes.join(" ");
  if (attrs && (typeof attrs !== "object" || attrs instanceof Node || Array.isArray(attrs))) {
    children.unshift(attrs);
    attrs = null;
  }
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2), value);
    else if (key === "class") el.className += (el.className ? " " : "") + value;
    else if (key === "text") el.textContent = value;
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key in el && typeof value !== "string") el[key] = value;
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === undefined || child === null || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else el.append(child instanceof Node ? child : String(child));
  }
}

export const SVG_NS = "http://www.w3.org/2000/svg";

/** An SVG element with attributes. */
export function s(tag, attrs, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value !== undefined && value !== null) el.setAttribute(key, String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

const ESC = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };
/** HTML-escape a value (for the few places that build large tables as one string). */
export const esc = (value) => String(value ?? "").replace(/[&<>"']/g, (c) => ESC[c]);

export function badge(status) {
  return h("span.badge", { class: status }, status);
}

export const badgeHTML = (status) => `<span class="badge ${esc(status)}">${esc(status)}</span>`;

const TIME = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false });
const TIME_HM = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit", hour12: false });
const DAY = new Intl.DateTimeFormat(undefined, { month: "short", day: "numeric" });

/** "12:03:04" today, "Mar 3 12:03:04" otherwise; "" for null. (Formatters are cached:
 * toLocaleTimeString builds one per call, too slow for thousands of rows.) */
export function time(iso, withSeconds = true) {
  if (!iso) return "";
  const d = new Date(iso);
  const t = (withSeconds ? TIME : TIME_HM).format(d);
  const today = new Date();
  const same = d.getFullYear() === today.getFullYear() && d.getMonth() === today.getMonth() && d.getDate() === today.getDate();
  return same ? t : `${DAY.format(d)} ${t}`;
}

/** Render `items` into `container` as HTML rows: the first chunk now, the rest in later tasks
 * so that a long list does not hold up the first paint. Returns a cancel function. */
export function renderChunked(container, items, toHTML, { first = 300, chunk = 1500, done } = {}) {
  let cancelled = false;
  container.innerHTML = items.slice(0, first).map(toHTML).join("");
  let at = first;
  const step = () => {
    if (cancelled) return;
    if (at >= items.length) { if (done) done(); return; }
    container.insertAdjacentHTML("beforeend", items.slice(at, at + chunk).map(toHTML).join(""));
    at += chunk;
    setTimeout(step, 0);
  };
  setTimeout(step, 0);
  return () => { cancelled = true; };
}

/** Milliseconds as "850 ms", "3.2 s", "4m 10s", "2h 5m". */
export function duration(ms) {
  if (ms === null || ms === undefined || Number.isNaN(ms)) return "";
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)} s`;
  const s = Math.round(ms / 1000);
  if (s < 3600) return `${Math.floor(s / 60)}m ${s % 60}s`;
  return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
}

export const ms = (iso) => (iso ? Date.parse(iso) : null);

export function json(value, indent = 2) {
  if (value === undefined) return "";
  try { return JSON.stringify(value, null, indent); } catch { return String(value); }
}

export function debounce(fn, wait) {
  let timer = null;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), wait);
  };
}

/** Coalesce calls: at most one run in flight, and one more queued after it. */
export function throttle(fn, wait) {
  let last = 0, timer = null;
  return () => {
    if (timer) return;
    const delay = Math.max(0, last + wait - Date.now());
    timer = setTimeout(() => { timer = null; last = Date.now(); fn(); }, delay);
  };
}

/** A message shown in place of content: an error, or an explanation. */
export function notice(message, kind = "error") {
  return h("div.notice", { class: kind, role: kind === "error" ? "alert" : "status" }, message);
}

export function pageHead(title, { crumbs, actions, sub } = {}) {
  return h("div.page-head",
    h("div",
      crumbs ? h("div.crumbs", crumbs) : null,
      h("h1", title),
      sub ? h("div.muted", sub) : null),
    actions ? h("div.actions", actions) : null);
}

/** A labelled control: <div><label for=id>text</label>control</div>. */
export function field(label, control) {
  return h("div", h("label", { for: control.id }, label), control);
}

export function dl(pairs) {
  const el = h("dl.props");
  for (const [k, v] of pairs) {
    if (v === undefined) continue;
    el.append(h("dt", k), h("dd", v === null ? h("span.muted", "—") : v));
  }
  return el;
}

/** Seconds as a compact span: "45s", "5m", "1h 30m", "2d 4h" (whole seconds, rounded down,
 * so that a countdown never shows more time than is left). */
export function span(seconds) {
  let s = Math.max(0, Math.floor(Number(seconds) + 1e-6));
  if (s < 60) return `${s}s`;
  const d = Math.floor(s / 86400); s -= d * 86400;
  const hr = Math.floor(s / 3600); s -= hr * 3600;
  const m = Math.floor(s / 60); s -= m * 60;
  const parts = d ? [[d, "d"], [hr, "h"]] : hr ? [[hr, "h"], [m, "m"]] : [[m, "m"], [s, "s"]];
  return parts.filter(([n], i) => i === 0 || n).map(([n, u]) => `${n}${u}`).join(" ");
}

/** An ISO time relative to now: "in 4m 10s", "3m 2s ago", "now"; "" for null. */
export function relative(iso, now = Date.now()) {
  if (!iso) return "";
  const diff = (Date.parse(iso) - now) / 1000;
  if (Math.abs(diff) < 1) return "now";
  return diff > 0 ? `in ${span(diff)}` : `${span(-diff)} ago`;
}

/** A <time> element showing a time and, updated by tickRelative(), how far it is from now. */
export function when(iso, { countdown = false } = {}) {
  if (!iso) return h("span.muted", "—");
  return h("span.when",
    h("time", { datetime: iso, title: new Date(iso).toISOString() }, time(iso)),
    " ", h("span.rel.muted", { "data-rel": iso, "data-countdown": countdown ? "1" : null }, `(${relative(iso)})`));
}

/** Refresh every relative time under `root` (see when()); countdowns past due get `.overdue`. */
export function tickRelative(root = document) {
  const now = Date.now();
  for (const el of root.querySelectorAll("[data-rel]")) {
    const text = `(${relative(el.dataset.rel, now)})`;
    if (el.textContent !== text) el.textContent = text;
    if (el.dataset.countdown) el.classList.toggle("overdue", Date.parse(el.dataset.rel) <= now);
  }
}

/** Call `fn` every `wait` ms while the tab is visible, never twice at once. Returns a stop. */
export function poll(fn, wait) {
  let busy = false;
  const id = setInterval(async () => {
    if (busy || document.hidden) return;
    busy = true;
    try { await fn(); } catch (err) { console.warn(err); } finally { busy = false; }
  }, wait);
  return () => clearInterval(id);
}

/**
 * Make `parent`'s children one element per item, in order, keyed by `key(item)`. An element
 * whose item did not change is kept as it is (its focus, open <details> and typed text stay);
 * a changed one is rendered again with `render(item)`.
 */
export function syncKeyed(parent, items, key, render) {
  const old = new Map();
  for (const el of [...parent.children]) {
    if (el.dataset.key !== undefined) old.set(el.dataset.key, el);
    else el.remove();
  }
  const wanted = items.map((item) => {
    const k = String(key(item));
    const sig = JSON.stringify(item);
    let el = old.get(k);
    old.delete(k);
    if (!el || el.dataset.sig !== sig) {
      const fresh = render(item);
      fresh.dataset.key = k;
      fresh.dataset.sig = sig;
      if (el) el.replaceWith(fresh);
      el = fresh;
    }
    return el;
  });
  for (const el of old.values()) el.remove();
  wanted.forEach((el, i) => {
    if (parent.children[i] !== el) parent.insertBefore(el, parent.children[i] || null);
  });
}
