// Runs: filter by flow, status, time range and run id text; paginate; live on the first page.
import { api, stream } from "../api.js";
import { badgeHTML, debounce, duration, esc, field, h, notice, pageHead, throttle, time } from "../util.js";

const STATUSES = ["running", "awaiting", "completed", "failed", "canceled", "stalled"];
const RANGES = [["", "Any time"], ["15m", "Last 15 minutes"], ["1h", "Last hour"], ["24h", "Last 24 hours"], ["7d", "Last 7 days"]];
const RANGE_MS = { "15m": 9e5, "1h": 36e5, "24h": 864e5, "7d": 6048e5 };
const SIZES = ["50", "100", "500", "1000"];
const SCAN_LIMIT = 20000; // runs looked at per page when filtering by text

export async function mount(main) {
  const query = new URLSearchParams(window.location.search);
  const flows = (await api("/api/flows")).items.map((f) => f.name);
  const select = (id, options, value) => {
    const el = h("select", { id });
    for (const [v, label] of options) el.append(h("option", { value: v, selected: v === value }, label));
    return el;
  };
  const flowSel = select("f-flow", [["", "All flows"], ...flows.map((f) => [f, f])], query.get("flow") || "");
  const statusSel = select("f-status", [["", "Any status"], ...STATUSES.map((st) => [st, st])], query.get("status") || "");
  const rangeSel = select("f-range", RANGES, query.get("since") || "");
  const sizeSel = select("f-size", SIZES.map((n) => [n, `${n} per page`]), query.get("per") || "50");
  const search = h("input", { id: "f-search", type: "search", placeholder: "part of a run id", value: query.get("q") || "", autocomplete: "off" });
  const info = h("p.muted", { id: "runs-info", role: "status" });
  const table = h("div.table-wrap", { id: "runs-table" });
  const newer = h("button", { type: "button", id: "newer" }, "← Newer");
  const older = h("button", { type: "button", id: "older" }, "Older →");
  main.append(
    pageHead("Runs", { sub: "Newest first. Filters are kept in the address, so a filtered list can be shared." }),
    h("section.panel",
      h("form.filters", { role: "search", onsubmit: (e) => e.preventDefault() },
        field("Flow", flowSel), field("Status", statusSel), field("Started", rangeSel),
        field("Run id contains", search), field("Page size", sizeSel)),
      info, table, h("div.pager", newer, older)),
  );

  let cursors = [null]; // cursor of each page seen; the last one is the current page
  let next = null;
  let loading = 0;

  function filters() {
    return {
      flow: flowSel.value, status: statusSel.value, since: rangeSel.value,
      q: search.value.trim(), per: Number(sizeSel.value),
    };
  }

  function syncUrl() {
    const f = filters();
    const qs = new URLSearchParams();
    if (f.flow) qs.set("flow", f.flow);
    if (f.status) qs.set("status", f.status);
    if (f.since) qs.set("since", f.since);
    if (f.q) qs.set("q", f.q);
    if (f.per !== 50) qs.set("per", String(f.per));
    const url = `/runs${qs.toString() ? `?${qs}` : ""}`;
    window.history.replaceState(null, "", url);
  }

  async function fetchPage(cursor) {
    const f = filters();
    const base = new URLSearchParams();
    if (f.flow) base.set("flow", f.flow);
    if (f.status) base.set("status", f.status);
    const sinceMs = f.since ? Date.now() - RANGE_MS[f.since] : null;
    const items = [];
    let at = cursor, scanned = 0;
    for (;;) {
      const qs = new URLSearchParams(base);
      qs.set("limit", String(Math.min(500, f.q ? f.per : f.per - items.length)));
      if (at) qs.set("cursor", at);
      const page = await api(`/api/runs?${qs}`);
      scanned += page.items.length;
      let ended = false;
      for (const run of page.items) {
        if (sinceMs !== null && Date.parse(run.started_at) < sinceMs) { ended = true; break; }
        if (f.q && !run.run_id.toLowerCase().includes(f.q.toLowerCase())) continue;
        items.push(run);
      }
      at = ended ? null : page.next_cursor;
      if (!at || items.length >= f.per || scanned >= SCAN_LIMIT) break;
    }
    return { items, next: at };
  }

  async function load() {
    const ticket = (loading += 1);
    const started = performance.now();
    let page;
    try {
      page = await fetchPage(cursors[cursors.length - 1]);
    } catch (err) {
      table.replaceChildren(notice(err.message));
      return;
    }
    if (ticket !== loading) return; // a newer load replaced this one
    next = page.next;
    render(page.items);
    const n = page.items.length;
    const first = (cursors.length - 1) * filters().per;
    info.textContent = n ? `Page ${cursors.length}: ${n} run${n === 1 ? "" : "s"}${cursors.length > 1 ? ` after the first ${first}` : ""}.` : "";
    newer.disabled = cursors.length <= 1;
    older.disabled = !next;
    if (!main.dataset.renderedAt) main.dataset.renderedAt = String(Math.round(performance.now()));
    main.dataset.loadMs = String(Math.round(performance.now() - started));
  }

  function render(items) {
    if (!items.length) {
      table.innerHTML = `<div class="empty"><h2>No runs</h2><p>No run matches these filters.</p></div>`;
      return;
    }
    const now = Date.now();
    const rows = items.map((r) => {
      const end = r.completed_at ? Date.parse(r.completed_at) : now;
      const trig = r.trigger ? esc(r.trigger.type || r.trigger.name || "") : "";
      return `<tr data-run="${esc(r.run_id)}"><td><a class="mono" href="/runs/${encodeURIComponent(r.run_id)}">${esc(r.run_id)}</a></td>` +
        `<td><a href="/flows/${encodeURIComponent(r.flow)}">${esc(r.flow)}</a></td><td>${badgeHTML(r.status)}</td>` +
        `<td class="muted">${esc(time(r.started_at))}</td><td class="num">${esc(duration(end - Date.parse(r.started_at)))}</td><td class="muted">${trig}</td></tr>`;
    });
    table.innerHTML = `<table id="runs"><thead><tr><th scope="col">Run</th><th scope="col">Flow</th><th scope="col">Status</th>` +
      `<th scope="col">Started</th><th scope="col" class="num">Duration</th><th scope="col">Trigger</th></tr></thead><tbody>${rows.join("")}</tbody></table>`;
  }

  const restart = () => { cursors = [null]; syncUrl(); load(); };
  for (const el of [flowSel, statusSel, rangeSel, sizeSel]) el.addEventListener("change", restart);
  search.addEventListener("input", debounce(restart, 250));
  newer.addEventListener("click", () => { if (cursors.length > 1) { cursors.pop(); load(); } });
  older.addEventListener("click", () => { if (next) { cursors.push(next); load(); } });

  await load();
  const refresh = throttle(() => { if (cursors.length === 1) load(); }, 1500);
  stream("/api/events/stream", {
    onMessage({ event }) {
      if (event.startsWith("flow.")) refresh();
    },
  });
}
