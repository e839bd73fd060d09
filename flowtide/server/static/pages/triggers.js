// Triggers: every trigger with its type, status, subscribers and counters; pause and resume.
// Refreshed when a run starts from a trigger (the events stream) and every few seconds.
import { api, stream } from "../api.js";
import { badge, field, h, notice, pageHead, poll, syncKeyed, throttle, tickRelative, when } from "../util.js";

export const TYPES = ["event", "webhook", "schedule", "manual"];
const REFRESH_MS = 5000;

export const triggerHref = (name) => `/triggers/${encodeURIComponent(name)}`;

/** The pause / resume button of a trigger; `onDone(doc)` gets the changed trigger. */
export function triggerToggle(trigger, onDone, onError) {
  const paused = trigger.status === "paused";
  const verb = paused ? "resume" : "pause";
  const b = h("button.small", { type: "button", "data-action": verb, "aria-label": `${paused ? "Resume" : "Pause"} ${trigger.name}` }, paused ? "Resume" : "Pause");
  b.addEventListener("click", async () => {
    b.disabled = true;
    try {
      onDone(await api(`/api/triggers/${encodeURIComponent(trigger.name)}/${verb}`, { method: "POST" }));
    } catch (err) {
      b.disabled = false;
      onError(err);
    }
  });
  return b;
}

/** The flows a trigger starts, as links; a `manual` subscription (no auto-start) is marked. */
export function subscribers(subscriptions) {
  const flows = Object.entries(subscriptions || {}).sort(([a], [b]) => a.localeCompare(b));
  if (!flows.length) return h("span.muted", "none");
  return h("span.subs", flows.map(([flow, sub], i) => [
    i ? ", " : "",
    h("a", { href: `/flows/${encodeURIComponent(flow)}` }, flow),
    sub && sub.mode === "manual" ? h("span.muted", " (manual)") : "",
  ]));
}

export const STAT_COLUMNS = [["fires", "Fires"], ["runs_started", "Runs"], ["failures", "Failures"], ["skipped", "Skipped"]];

export async function mount(main) {
  const query = new URLSearchParams(window.location.search);
  const typeSel = h("select", { id: "f-type" },
    h("option", { value: "" }, "All types"),
    TYPES.map((t) => h("option", { value: t, selected: query.get("type") === t }, t)));
  const message = h("div", { "aria-live": "polite" });
  const info = h("p.muted", { id: "triggers-info", role: "status" });
  const tbody = h("tbody");
  const table = h("table", { id: "triggers" },
    h("thead", h("tr",
      h("th", { scope: "col" }, "Trigger"), h("th", { scope: "col" }, "Type"), h("th", { scope: "col" }, "Status"),
      h("th", { scope: "col" }, "Subscribers"),
      ...STAT_COLUMNS.map(([, l]) => h("th.num", { scope: "col" }, l)),
      h("th", { scope: "col" }, "Last fire"), h("th", { scope: "col" }, "Source"),
      h("th", { scope: "col" }, h("span.sr-only", "Actions")))),
    tbody);
  const empty = h("div.empty", { hidden: true },
    h("h2", "No triggers"),
    h("p", "Declare triggers on a flow's entry step (triggers.event, .webhook, .schedule, .manual) or create them with POST /api/triggers."));
  main.append(
    pageHead("Triggers", { sub: "What starts runs: events, webhooks, schedules and manual starts. Open a trigger for its fire history, replays and, for manual triggers, a form to fire it." }),
    message,
    h("section.panel",
      h("form.filters", { role: "search", onsubmit: (e) => e.preventDefault() }, field("Type", typeSel)),
      info, h("div.table-wrap", table), empty),
  );

  let triggers = [];
  const reload = async () => { triggers = (await api("/api/triggers")).items; render(); };
  const fail = (err) => message.replaceChildren(notice(err.message));

  function row(t) {
    const stats = t.stats || {};
    return h("tr", { "data-trigger": t.name, "data-status": t.status },
      h("th", { scope: "row" }, h("a", { href: triggerHref(t.name) }, t.name),
        t.description ? h("div.muted.small", t.description) : null),
      h("td", h("span.badge.kind", t.type)),
      h("td.status", badge(t.status)),
      h("td", subscribers(t.subscriptions)),
      ...STAT_COLUMNS.map(([k]) => h("td.num", { "data-stat": k }, String(stats[k] ?? 0))),
      h("td", when(stats.last_fire_at)),
      h("td.muted", t.source || ""),
      h("td", triggerToggle(t, () => reload().catch(fail), fail)));
  }

  function render() {
    const type = typeSel.value;
    const shown = type ? triggers.filter((t) => t.type === type) : triggers;
    syncKeyed(tbody, shown, (t) => t.name, row);
    table.hidden = !shown.length;
    empty.hidden = !!shown.length;
    const counts = TYPES.map((k) => [k, triggers.filter((t) => t.type === k).length]).filter(([, n]) => n);
    const paused = triggers.filter((t) => t.status === "paused").length;
    info.textContent = triggers.length
      ? `${triggers.length} trigger${triggers.length === 1 ? "" : "s"}: ${counts.map(([k, n]) => `${n} ${k}`).join(", ")}${paused ? `; ${paused} paused` : ""}.`
      : "";
  }

  typeSel.addEventListener("change", () => {
    const url = typeSel.value ? `?type=${typeSel.value}` : window.location.pathname;
    window.history.replaceState(null, "", url);
    render();
  });
  await reload();
  const refresh = throttle(() => reload().catch((err) => console.warn(err)), 1000);
  stream("/api/events/stream", {
    onOpen: () => refresh(), // catch up on what happened while connecting
    onMessage({ event, data }) {
      if (event === "flow.started" && data && data.data && data.data.trigger) refresh();
    },
  });
  poll(reload, REFRESH_MS);
  setInterval(() => tickRelative(main), 1000);
}
