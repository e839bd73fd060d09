// Schedules: every schedule trigger with its next and last occurrence (counting down), its
// counters and policies; pause and resume. Refreshed as scheduled runs start and every few
// seconds; the relative times tick every second.
import { api, stream } from "../api.js";
import { badge, h, notice, pageHead, poll, syncKeyed, throttle, tickRelative, when } from "../util.js";
import { cadence } from "./trigger.js";
import { triggerHref, triggerToggle } from "./triggers.js";

const REFRESH_MS = 5000;
const COUNTERS = [["fires", "Fires"], ["runs_started", "Runs"], ["failures", "Failures"], ["skipped", "Skipped"]];

export async function mount(main) {
  const message = h("div", { "aria-live": "polite" });
  const info = h("p.muted", { id: "schedules-info", role: "status" });
  const tbody = h("tbody");
  const table = h("table", { id: "schedules" },
    h("thead", h("tr",
      h("th", { scope: "col" }, "Schedule"), h("th", { scope: "col" }, "When"), h("th", { scope: "col" }, "Flows"),
      h("th", { scope: "col" }, "Next"), h("th", { scope: "col" }, "Last"),
      ...COUNTERS.map(([, l]) => h("th.num", { scope: "col" }, l)), h("th.num", { scope: "col" }, "Missed"),
      h("th", { scope: "col" }, "Overlap, catch-up"), h("th", { scope: "col" }, "Status"),
      h("th", { scope: "col" }, h("span.sr-only", "Actions")))),
    tbody);
  const empty = h("div.empty", { hidden: true },
    h("h2", "No schedules"),
    h("p", "Add triggers.schedule(\"0 9 * * *\", tz=...) or triggers.schedule(every=\"30s\") to a flow's entry step."));
  main.append(
    pageHead("Schedules", { sub: "Cron and interval triggers: when each fires next, when it last did, and what came of it. A paused schedule does not fire until it is resumed." }),
    message,
    h("section.panel", info, h("div.table-wrap", table), empty),
  );

  let items = [];
  const fail = (err) => message.replaceChildren(notice(err.message));
  const reload = async () => { items = (await api("/api/schedules")).items; render(); };

  function row(s) {
    const stats = s.stats || {};
    const paused = s.status === "paused";
    return h("tr", { "data-schedule": s.name, "data-status": s.status },
      h("th", { scope: "row" }, h("a", { href: triggerHref(s.name) }, s.name)),
      h("td.mono", cadence(s)),
      h("td", (s.flows || []).map((f, i) => [i ? ", " : "", h("a", { href: `/flows/${encodeURIComponent(f)}` }, f)])),
      h("td", { "data-col": "next" }, paused ? h("span.muted", "— paused") : when(s.next_at, { countdown: true })),
      h("td", { "data-col": "last" }, when(s.last_at)),
      ...COUNTERS.map(([k]) => h("td.num", { "data-stat": k }, String(stats[k] ?? 0))),
      h("td.num", { "data-stat": "missed" }, String(s.missed ?? 0)),
      h("td.muted", `${s.overlap}, ${s.catch_up}`),
      h("td.status", badge(s.status)),
      h("td", triggerToggle(s, () => reload().catch(fail), fail)));
  }

  function render() {
    syncKeyed(tbody, items, (s) => s.name, row);
    table.hidden = !items.length;
    empty.hidden = !!items.length;
    const active = items.filter((s) => s.status === "active" && s.next_at).sort((a, b) => Date.parse(a.next_at) - Date.parse(b.next_at));
    const paused = items.length - items.filter((s) => s.status === "active").length;
    info.textContent = items.length
      ? `${items.length} schedule${items.length === 1 ? "" : "s"}${paused ? `, ${paused} paused` : ""}.${active.length ? ` Next: ${active[0].name} at ${new Date(active[0].next_at).toLocaleString()}.` : ""}`
      : "";
  }

  await reload();
  const refresh = throttle(() => reload().catch((err) => console.warn(err)), 1000);
  stream("/api/events/stream", {
    onOpen: () => refresh(), // catch up on what happened while connecting
    onMessage({ event, data }) {
      const trig = event === "flow.started" && data && data.data && data.data.trigger;
      if (trig && trig.type === "schedule") refresh();
    },
  });
  poll(reload, REFRESH_MS);
  setInterval(() => tickRelative(main), 1000);
}
