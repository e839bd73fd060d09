// Overview: run counts per flow, throughput over the last hour, queue depths, recent failures.
import { api, stream } from "../api.js";
import { badge, h, notice, pageHead, s, throttle, time } from "../util.js";

const BUCKETS = 12; // 5-minute bars over the last hour
const BUCKET_MS = 5 * 60 * 1000;
const STATUSES = ["running", "awaiting", "failed", "completed"];

export async function mount(main) {
  const tiles = h("div.tiles", { "aria-label": "Runs by status" });
  const flowsBody = h("div.table-wrap");
  const chart = h("div", { id: "throughput" });
  const queuesBody = h("div.table-wrap");
  const failures = h("div", { id: "failures" });
  main.append(
    pageHead("Overview", { sub: "Live counts of runs and jobs; updated as events arrive." }),
    tiles,
    h("div.grid.two",
      h("section.panel", { "aria-labelledby": "h-flows" }, h("h2", { id: "h-flows" }, "Runs per flow"), flowsBody),
      h("section.panel", { "aria-labelledby": "h-tp" },
        h("h2", { id: "h-tp" }, "Throughput, last hour"),
        h("div.legend", h("span", h("i"), "completed"), h("span", h("i.failed"), "failed")),
        chart),
      h("section.panel", { "aria-labelledby": "h-queues" }, h("h2", { id: "h-queues" }, "Queues"), queuesBody),
      h("section.panel", { "aria-labelledby": "h-fail" }, h("h2", { id: "h-fail" }, "Recent failures"), failures)),
  );

  async function loadFlows() {
    const flows = (await api("/api/flows")).items;
    const totals = Object.fromEntries(STATUSES.map((st) => [st, 0]));
    for (const f of flows) for (const st of STATUSES) totals[st] += f.stats.by_status[st] || 0;
    tiles.replaceChildren(...STATUSES.map((st) =>
      h("div.tile", { class: st, "data-status": st },
        h("div.n", String(totals[st])), h("div.l", `${st} runs`))));
    if (!flows.length) {
      flowsBody.replaceChildren(h("p.muted", "No flows are defined."));
      return;
    }
    flowsBody.replaceChildren(h("table", { id: "flow-counts" },
      h("thead", h("tr", h("th", { scope: "col" }, "Flow"),
        ...STATUSES.map((st) => h("th.num", { scope: "col" }, st)), h("th", { scope: "col" }, "Last run"))),
      h("tbody", flows.map((f) => h("tr", { "data-flow": f.name },
        h("th", { scope: "row" }, h("a", { href: `/flows/${encodeURIComponent(f.name)}` }, f.name)),
        ...STATUSES.map((st) => h("td.num", { "data-status": st },
          h("a", { href: `/runs?flow=${encodeURIComponent(f.name)}&status=${st}`, "aria-label": `${f.stats.by_status[st] || 0} ${st} runs of ${f.name}` }, String(f.stats.by_status[st] || 0)))),
        h("td.muted", time(f.stats.last_started_at)))))));
  }

  async function loadThroughput() {
    const now = Date.now();
    const start = now - BUCKETS * BUCKET_MS;
    const done = new Array(BUCKETS).fill(0);
    const failed = new Array(BUCKETS).fill(0);
    // Runs are listed newest first by start: look back far enough for runs that ended lately.
    let cursor = null, scanned = 0;
    for (;;) {
      const page = await api(`/api/runs?limit=500${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`);
      let old = false;
      for (const run of page.items) {
        if (Date.parse(run.started_at) < start - 6 * 3600 * 1000) { old = true; break; }
        const end = run.completed_at ? Date.parse(run.completed_at) : null;
        if (end === null || end < start) continue;
        const i = Math.min(BUCKETS - 1, Math.floor((end - start) / BUCKET_MS));
        if (run.status === "failed" || run.status === "stalled") failed[i] += 1;
        else if (run.status === "completed") done[i] += 1;
      }
      scanned += page.items.length;
      cursor = page.next_cursor;
      if (old || !cursor || scanned >= 5000) break;
    }
    chart.replaceChildren(drawChart(done, failed, start));
  }

  async function loadFailures() {
    const runs = (await api("/api/runs?status=failed&limit=6")).items;
    if (!runs.length) {
      failures.replaceChildren(h("p.muted", "No failed runs."));
      return;
    }
    const views = await Promise.all(runs.map((r) => api(`/api/runs/${encodeURIComponent(r.run_id)}`).catch(() => null)));
    failures.replaceChildren(h("table",
      h("thead", h("tr", h("th", { scope: "col" }, "Run"), h("th", { scope: "col" }, "Flow"), h("th", { scope: "col" }, "Error"), h("th", { scope: "col" }, "Ended"))),
      h("tbody", runs.map((r, i) => h("tr",
        h("td", h("a.mono", { href: `/runs/${encodeURIComponent(r.run_id)}` }, r.run_id.slice(-12))),
        h("td", r.flow),
        h("td.error", views[i] && views[i].error ? `${views[i].error.type || "Error"}: ${views[i].error.message || ""}` : ""),
        h("td.muted", time(r.completed_at)))))));
  }

  function showQueues(queues) {
    if (!queues.length) {
      queuesBody.replaceChildren(h("p.muted", "No queues yet."));
      return;
    }
    queuesBody.replaceChildren(h("table", { id: "queue-depths" },
      h("thead", h("tr", h("th", { scope: "col" }, "Queue"), ...["waiting", "active", "delayed", "failed"].map((st) => h("th.num", { scope: "col" }, st)), h("th", { scope: "col" }, ""))),
      h("tbody", queues.map((q) => h("tr", { "data-queue": q.name },
        h("th", { scope: "row" }, h("a", { href: `/queues/${encodeURIComponent(q.name)}` }, q.name)),
        ...["waiting", "active", "delayed", "failed"].map((st) => h("td.num", { "data-state": st }, String(q.counts[st] || 0))),
        h("td", q.paused ? badge("paused") : ""))))));
  }

  const safe = (fn) => () => fn().catch((err) => console.warn(err));
  await Promise.all([loadFlows(), loadThroughput(), loadFailures(), api("/api/queues").then((r) => showQueues(r.items))])
    .catch((err) => main.prepend(notice(err.message)));

  const refreshRuns = throttle(safe(async () => { await Promise.all([loadFlows(), loadThroughput()]); }), 1000);
  const refreshFailures = throttle(safe(loadFailures), 2000);
  stream("/api/events/stream", {
    onOpen() { refreshRuns(); refreshFailures(); }, // catch up on what ended while connecting
    onMessage({ event, data }) {
      if (event === "stats") showQueues(data.queues);
      else if (event.startsWith("flow.")) {
        refreshRuns();
        if (event === "flow.failed") refreshFailures();
      }
    },
  });
  setInterval(safe(loadThroughput), 60_000); // the window moves even when nothing happens
}

function drawChart(done, failed, start) {
  const W = 480, H = 120, left = 26, bottom = 18, top = 8;
  const max = Math.max(1, ...done.map((d, i) => d + failed[i]));
  const bw = (W - left) / done.length;
  const y = (v) => top + (H - bottom - top) * (1 - v / max);
  const total = done.reduce((a, b) => a + b, 0), totalFailed = failed.reduce((a, b) => a + b, 0);
  const svg = s("svg", {
    class: "chart", viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: "none", role: "img",
    "aria-label": `Runs finished in the last hour: ${total} completed, ${totalFailed} failed`,
  },
  s("line", { class: "axis", x1: left, x2: W, y1: H - bottom, y2: H - bottom }),
  s("text", { x: left - 4, y: top + 8, "text-anchor": "end" }, String(max)),
  s("text", { x: left - 4, y: H - bottom, "text-anchor": "end" }, "0"));
  done.forEach((d, i) => {
    const x = left + i * bw + 2;
    const label = `${new Date(start + i * BUCKET_MS).toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit", hour12: false })}: ${d} completed, ${failed[i]} failed`;
    const g = s("g", {}, s("title", {}, label));
    if (d) g.append(s("rect", { class: "bar", x, width: bw - 4, y: y(d), height: H - bottom - y(d) }));
    if (failed[i]) g.append(s("rect", { class: "bar failed", x, width: bw - 4, y: y(d + failed[i]), height: y(d) - y(d + failed[i]) }));
    svg.append(g);
    if (i % 3 === 0) {
      svg.append(s("text", { x: x, y: H - 4 }, `-${60 - i * 5}m`));
    }
  });
  return h("div", svg, h("p.muted", { id: "throughput-total" }, `${total} completed and ${totalFailed} failed in the last hour`));
}
