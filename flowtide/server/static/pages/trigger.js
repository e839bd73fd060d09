// One trigger: its definition and counters, pause / resume, firing it (a form generated from
// its JSON schema for manual triggers; JSON for the others), and its fire history, newest
// first, paged, with a replay of any fire. Refreshed as runs start from it and every few seconds.
import { ApiError, api, stream } from "../api.js";
import { schemaForm } from "../schemaform.js";
import { badge, dl, h, json, notice, pageHead, poll, span, syncKeyed, throttle, tickRelative, when } from "../util.js";
import { STAT_COLUMNS, subscribers, triggerToggle } from "./triggers.js";

const PER_PAGE = 20;
const REFRESH_MS = 5000;
const short = (id) => (id && id.length > 12 ? `…${id.slice(-12)}` : id || "");

/** "every 1h" or "cron 0 9 * * 1-5 (Europe/Berlin)". */
export function cadence(options) {
  if (!options) return "";
  if (options.cron) return `cron ${options.cron}${options.tz && options.tz !== "UTC" ? ` (${options.tz})` : " (UTC)"}`;
  if (options.every !== null && options.every !== undefined) return `every ${span(options.every)}`;
  return "";
}

/** The runs a fire started, as links to their pages. */
export function runLinks(fire) {
  const runs = Object.entries(fire.runs || {});
  const pairs = runs.length ? runs : (fire.run_ids || []).map((id) => ["run", id]);
  if (!pairs.length) return h("span.muted", "none");
  return h("ul.plain", pairs.map(([flow, id]) => h("li",
    h("a", { href: `/runs/${encodeURIComponent(id)}`, "data-run": id }, h("span", flow), " ", h("span.mono", short(id))))));
}

/** What a fire did not start: skipped flows and failed starts. */
function misses(fire) {
  const out = [];
  for (const s of fire.skipped || []) out.push(h("li", h("span.badge.skipped", "skipped"), ` ${s.flow}: ${s.reason}`));
  for (const f of fire.failed || []) out.push(h("li", h("span.badge.failed", "failed"), ` ${f.flow}: ${f.error || ""}`));
  return out.length ? h("ul.plain", out) : null;
}

export async function mount(main, params) {
  const name = params.name;
  const enc = encodeURIComponent(name);
  let doc = await api(`/api/triggers/${enc}`);

  const statusEl = h("span", { id: "trigger-status" });
  const toggle = h("span");
  const message = h("div", { id: "trigger-message", "aria-live": "polite" });
  const tiles = h("div.tiles", { id: "trigger-stats" });
  const details = h("div", { id: "trigger-details" });
  const fireBox = h("div", { id: "fire-box" });
  const fireResult = h("div", { id: "fire-result", "aria-live": "polite" });
  const fires = h("tbody", { id: "fires" });
  const firesEmpty = h("div.empty", { hidden: true }, h("h2", "No fires yet"), h("p", "Fires appear here as the trigger starts runs."));
  const firesTable = h("table", { id: "fires-table" },
    h("caption.sr-only", "Fires of this trigger, newest first"),
    h("thead", h("tr", ...["Time", "Fire", "Source", "Payload", "Runs started", "Not started", ""].map((t) => h("th", { scope: "col" }, t || h("span.sr-only", "Actions"))))),
    fires);
  const pageInfo = h("span.muted", { id: "fires-page" });
  const newer = h("button", { type: "button", id: "fires-newer" }, "← Newer");
  const older = h("button", { type: "button", id: "fires-older" }, "Older →");

  main.append(
    pageHead(h("span", "Trigger ", h("span.mono", name)), {
      crumbs: [h("a", { href: "/triggers" }, "Triggers"), " / "],
      sub: doc.description || undefined,
      actions: [statusEl, toggle],
    }),
    message, tiles,
    h("div.split",
      h("section.panel", { "aria-labelledby": "h-fire" }, h("h2", { id: "h-fire" }, doc.type === "manual" ? "Start runs" : "Fire by hand"), fireBox, fireResult),
      h("section.panel", { "aria-labelledby": "h-def" }, h("h2", { id: "h-def" }, "Definition"), details)),
    h("section.panel", { style: "margin-top:1rem", "aria-labelledby": "h-fires" },
      h("div.page-head", h("h2", { id: "h-fires" }, "Fire history"), h("div.actions", pageInfo)),
      h("div.table-wrap", firesTable), firesEmpty, h("div.pager", newer, older)),
  );

  // -- the trigger ----------------------------------------------------------------------------
  const fail = (err) => message.replaceChildren(notice(err.message));

  const seen = new Map(); // element -> the data it shows: render only what changed
  const changed = (el, data) => {
    const sig = JSON.stringify(data);
    if (seen.get(el) === sig) return false;
    seen.set(el, sig);
    return true;
  };

  function renderDoc() {
    if (changed(statusEl, doc.status)) {
      statusEl.replaceChildren(badge(doc.status));
      statusEl.dataset.status = doc.status;
      toggle.replaceChildren(triggerToggle(doc, (d) => { doc = { ...doc, ...d }; renderDoc(); renderFireBox(); first(); }, fail));
    }
    const stats = doc.stats || {};
    if (changed(tiles, stats)) tiles.replaceChildren(
      ...STAT_COLUMNS.map(([k, l]) => h("div.tile", { "data-stat": k, class: k === "failures" && stats[k] ? "failed" : "" }, h("div.n", String(stats[k] ?? 0)), h("div.l", l === "Runs" ? "Runs started" : l))),
      h("div.tile", h("div.n.small-n", stats.last_fire_at ? when(stats.last_fire_at) : "—"), h("div.l", "Last fire")));
    const { stats: _, ...definition } = doc;
    if (!changed(details, definition)) return;
    const o = doc.options || {};
    const auth = o.auth && typeof o.auth === "object" ? `${o.auth.kind}${o.auth.secret_env ? ` (secret in $${o.auth.secret_env})` : ""}` : o.auth;
    details.replaceChildren(dl([
      ["Type", h("span.badge.kind", doc.type)],
      ["Status", badge(doc.status)],
      ["Subscribers", subscribers(doc.subscriptions)],
      ["Source", doc.source === "api" ? "created through the API" : "declared in code"],
      doc.type === "webhook" ? ["URL", doc.url ? h("code", { id: "webhook-url" }, `${o.method || "POST"} ${doc.url}`) : null] : ["URL", undefined],
      doc.type === "webhook" ? ["Auth", auth || "none"] : ["Auth", undefined],
      doc.type === "webhook" && o.idempotency ? ["Idempotency", o.idempotency] : ["Idempotency", undefined],
      doc.type === "webhook" && o.rate_limit ? ["Rate limit", o.rate_limit] : ["Rate limit", undefined],
      doc.type === "event" ? ["From flow emits", o.from_emits ? "yes" : "no (app.emit and the fire API)"] : ["From flow emits", undefined],
      doc.type === "schedule" ? ["When", cadence(o)] : ["When", undefined],
      doc.type === "schedule" ? ["Next", doc.status === "paused" ? h("span.muted", "paused") : when(doc.next_at, { countdown: true })] : ["Next", undefined],
      doc.type === "schedule" ? ["Last", when(doc.last_at)] : ["Last", undefined],
      doc.type === "schedule" ? ["Overlap, catch-up", `${o.overlap}, ${o.catch_up}`] : ["Overlap, catch-up", undefined],
      doc.type === "schedule" && doc.missed ? ["Missed", String(doc.missed)] : ["Missed", undefined],
      ["Payload schema", doc.schema ? h("details", h("summary", doc.schema.title || "JSON schema"), h("pre", json(doc.schema))) : null],
      ["Created", when(doc.created_at)],
      ["Updated", when(doc.updated_at)],
    ]));
  }

  // -- firing ---------------------------------------------------------------------------------
  let renderedFor = null;
  function renderFireBox() {
    const key = `${doc.status}|${JSON.stringify(doc.schema)}`;
    if (renderedFor === key) return;
    renderedFor = key;
    const paused = doc.status === "paused";
    const manual = doc.type === "manual";
    const form = schemaForm(doc.schema, { prefix: "f" });
    const submit = h("button.primary", { type: "submit", id: "fire", disabled: paused }, manual ? "Start" : "Fire");
    const el = h("form", { id: "fire-form", novalidate: true, "aria-labelledby": "h-fire" },
      manual
        ? h("p.muted", doc.schema ? "Fill in the payload; it is checked here, then by the server." : "This trigger takes any JSON payload.")
        : h("p.muted", `Sends a payload as if the ${doc.type} ${doc.type === "webhook" ? "were called" : doc.type === "event" ? "were emitted" : "occurred"}: every subscribed flow with mode auto starts.`),
      form.element,
      paused ? h("p.muted", { id: "fire-paused" }, "The trigger is paused: resume it to fire.") : null,
      h("div.actions", submit));
    el.addEventListener("submit", async (event) => {
      event.preventDefault();
      fireResult.replaceChildren();
      const { value, errors } = form.read();
      if (errors.length) { form.showErrors(errors); return; }
      form.clear();
      submit.disabled = true;
      try {
        const fire = await api(`/api/triggers/${enc}/fire`, { method: "POST", body: value === undefined ? null : value });
        showFire(fire, "Fired");
        loadDoc().catch(fail);
        first();
      } catch (err) {
        if (err instanceof ApiError && err.errors) form.showErrors(err.errors, `The server did not accept the payload: ${err.message}`);
        else fireResult.replaceChildren(notice(err.message));
      } finally {
        submit.disabled = doc.status === "paused";
      }
    });
    if (manual) fireBox.replaceChildren(el);
    else fireBox.replaceChildren(h("details", { id: "fire-details" }, h("summary", "Fire with a test payload"), el));
  }

  function showFire(fire, verb) {
    const n = (fire.run_ids || []).length;
    fireResult.replaceChildren(h("div.notice.info", { role: "status", "data-fire": fire.fire_id },
      h("p", `${verb}: fire `, h("span.mono", short(fire.fire_id)), ` started ${n} run${n === 1 ? "" : "s"}${n ? ":" : "."}`),
      n ? runLinks(fire) : null, misses(fire)));
  }

  // -- fire history ---------------------------------------------------------------------------
  let cursors = [null];
  let next = null;
  let highlight = null;

  function fireRow(fire) {
    const replay = h("button.small", { type: "button", "data-action": "replay", "aria-label": `Replay fire ${fire.fire_id}`, disabled: doc.status === "paused" }, "Replay");
    replay.addEventListener("click", async () => {
      replay.disabled = true;
      try {
        const again = await api(`/api/triggers/${enc}/fires/${encodeURIComponent(fire.fire_id)}/replay`, { method: "POST" });
        highlight = again.fire_id;
        showFire(again, `Replayed fire ${short(fire.fire_id)}`);
        loadDoc().catch(fail);
        first();
      } catch (err) {
        fireResult.replaceChildren(notice(`Replay of fire ${short(fire.fire_id)}: ${err.message}`));
        replay.disabled = false;
      }
    });
    return h("tr", { "data-fire": fire.fire_id, "data-replay-of": fire.replay_of || null, class: fire.fire_id === highlight ? "new" : null },
      h("td", when(fire.ts)),
      h("td.mono", { title: fire.fire_id }, short(fire.fire_id)),
      h("td", h("span.badge.kind", fire.source),
        fire.replay_of ? h("div.small", "replay of ", h("span.mono", { title: fire.replay_of }, short(fire.replay_of))) : null,
        fire.delivery_id ? h("div.small.muted", `delivery ${fire.delivery_id}`) : null,
        fire.scheduled_at ? h("div.small.muted", `for ${new Date(fire.scheduled_at).toLocaleString()}`) : null),
      h("td", fire.payload === null || fire.payload === undefined ? h("span.muted", "none") : h("details", h("summary", "payload"), h("pre", json(fire.payload)))),
      h("td", runLinks(fire)),
      h("td", misses(fire) || h("span.muted", "—")),
      h("td", replay));
  }

  async function loadFires() {
    const qs = new URLSearchParams({ limit: String(PER_PAGE) });
    const cursor = cursors[cursors.length - 1];
    if (cursor) qs.set("cursor", cursor);
    const page = await api(`/api/triggers/${enc}/fires?${qs}`);
    next = page.next_cursor;
    newer.disabled = cursors.length <= 1;
    older.disabled = !next;
    // the paused state changes the replay buttons: part of each row's key
    syncKeyed(fires, page.items.map((f) => ({ ...f, _paused: doc.status === "paused", _new: f.fire_id === highlight })), (f) => f.fire_id, fireRow);
    firesTable.hidden = !page.items.length;
    firesEmpty.hidden = !!page.items.length || cursors.length > 1;
    pageInfo.textContent = page.items.length ? `Page ${cursors.length}${cursors.length === 1 ? ", newest first" : ""}` : "";
  }
  const first = () => { cursors = [null]; loadFires().catch(fail); };
  newer.addEventListener("click", () => { if (cursors.length > 1) { cursors.pop(); loadFires().catch(fail); } });
  older.addEventListener("click", () => { if (next) { cursors.push(next); loadFires().catch(fail); } });

  async function loadDoc() {
    doc = await api(`/api/triggers/${enc}`);
    renderDoc();
    renderFireBox();
  }

  renderDoc();
  renderFireBox();
  await loadFires();

  const refresh = throttle(() => {
    loadDoc().catch((err) => console.warn(err));
    if (cursors.length === 1) loadFires().catch((err) => console.warn(err));
  }, 1000);
  stream("/api/events/stream", {
    onOpen: () => refresh(), // catch up on what happened while connecting
    onMessage({ event, data }) {
      const trig = event === "flow.started" && data && data.data && data.data.trigger;
      if (trig && trig.name === name) refresh();
    },
  });
  poll(async () => {
    await loadDoc();
    if (cursors.length === 1) await loadFires();
  }, REFRESH_MS);
  setInterval(() => tickRelative(main), 1000);
}
