// One queue: counts, pause/resume, its jobs by state with payload and error; retry and delete.
import { api, stream } from "../api.js";
import { badge, h, json, notice, pageHead, throttle, time } from "../util.js";
import { STATES, pauseButton } from "./queues.js";

const PER_PAGE = 50;

export async function mount(main, params) {
  const name = params.queue;
  const enc = encodeURIComponent(name);
  const query = new URLSearchParams(window.location.search);
  let state = STATES.includes(query.get("state")) ? query.get("state") : "";
  let cursors = [null];
  let next = null;

  const counts = h("div.tiles", { id: "queue-counts" });
  const pause = h("span");
  const message = h("div", { "aria-live": "polite" });
  const tabs = h("div.tabs", { role: "tablist", "aria-label": "Job state" });
  const list = h("div.table-wrap", { id: "jobs", role: "tabpanel" });
  const newer = h("button", { type: "button" }, "← Newer");
  const older = h("button", { type: "button" }, "Older →");
  main.append(
    pageHead(`Queue ${name}`, { crumbs: [h("a", { href: "/queues" }, "Queues"), " / "], actions: [pause] }),
    message, counts, h("section.panel", tabs, list, h("div.pager", newer, older)),
  );

  function renderCounts(q) {
    counts.replaceChildren(...STATES.map((st) => h("div.tile", { class: st, "data-state": st }, h("div.n", String(q.counts[st] || 0)), h("div.l", st))));
    pause.replaceChildren(q.paused ? badge("paused") : "", " ", pauseButton(q, () => loadCounts()));
  }
  async function loadCounts() {
    const q = (await api("/api/queues")).items.find((x) => x.name === name);
    if (!q) throw new Error(`unknown queue ${name}`);
    renderCounts(q);
  }

  function renderTabs() {
    tabs.replaceChildren(...[["", "All"], ...STATES.map((st) => [st, st])].map(([value, label]) => {
      const tab = h("button", { type: "button", role: "tab", "aria-selected": String(state === value), "data-state": value || "all", tabindex: state === value ? "0" : "-1" }, label);
      tab.addEventListener("click", () => {
        state = value;
        cursors = [null];
        const url = state ? `?state=${state}` : window.location.pathname;
        window.history.replaceState(null, "", url);
        renderTabs();
        loadJobs();
      });
      tab.addEventListener("keydown", (event) => {
        const sib = event.key === "ArrowRight" ? tab.nextElementSibling : event.key === "ArrowLeft" ? tab.previousElementSibling : null;
        if (sib) { sib.focus(); sib.click(); }
      });
      return tab;
    }));
  }

  function action(label, job, run) {
    const b = h("button.small", { type: "button", "data-action": label.toLowerCase(), "aria-label": `${label} job ${job.job_id}` }, label);
    b.addEventListener("click", async () => {
      b.disabled = true;
      try {
        await run();
        message.replaceChildren(notice(`${label}: job ${job.job_id} done.`, "info"));
        await Promise.all([loadJobs(), loadCounts()]);
      } catch (err) {
        message.replaceChildren(notice(`${label} job ${job.job_id}: ${err.message}`));
        b.disabled = false;
      }
    });
    return b;
  }

  async function loadJobs() {
    const qs = new URLSearchParams({ limit: String(PER_PAGE) });
    if (state) qs.set("state", state);
    const cursor = cursors[cursors.length - 1];
    if (cursor) qs.set("cursor", cursor);
    let page;
    try {
      page = await api(`/api/queues/${enc}/jobs?${qs}`);
    } catch (err) {
      list.replaceChildren(notice(err.message));
      return;
    }
    next = page.next_cursor;
    newer.disabled = cursors.length <= 1;
    older.disabled = !next;
    if (!page.items.length) {
      list.replaceChildren(h("div.empty", h("h2", "No jobs"), h("p", state ? `No ${state} jobs in this queue.` : "This queue has no jobs.")));
      return;
    }
    list.replaceChildren(h("table",
      h("thead", h("tr", ...["Job", "Function / step", "State", "Attempt", "Created", "Finished", "Input", "Error", ""].map((t) => h("th", { scope: "col" }, t || h("span.sr-only", "Actions"))))),
      h("tbody", page.items.map((job) => h("tr", { "data-job": job.job_id },
        h("td.mono", job.job_id),
        h("td", job.run_id ? [h("a", { href: `/runs/${encodeURIComponent(job.run_id)}` }, job.flow || "run"), ` · ${job.name}`] : job.name),
        h("td", badge(job.state)),
        h("td.num", String(job.attempt)),
        h("td.muted", time(job.created_at)),
        h("td.muted", time(job.finished_at)),
        h("td", h("details", h("summary", "payload"), h("pre", json(job.input)))),
        h("td", job.error ? h("details", h("summary.error", `${job.error.type || "Error"}: ${job.error.message || ""}`), job.error.traceback ? h("pre", job.error.traceback) : null) : ""),
        h("td", h("div.counts",
          ["failed", "canceled"].includes(job.state) ? action("Retry", job, () => api(`/api/jobs/${encodeURIComponent(job.job_id)}/retry`, { method: "POST" })) : null,
          job.state !== "active" ? action("Delete", job, () => api(`/api/jobs/${encodeURIComponent(job.job_id)}`, { method: "DELETE" })) : null)))))));
  }

  newer.addEventListener("click", () => { if (cursors.length > 1) { cursors.pop(); loadJobs(); } });
  older.addEventListener("click", () => { if (next) { cursors.push(next); loadJobs(); } });
  renderTabs();
  await loadCounts();
  await loadJobs();
  const refresh = throttle(() => { if (cursors.length === 1) loadJobs(); }, 1000);
  stream("/api/events/stream", {
    onMessage({ event, data }) {
      if (event !== "stats") return;
      const q = data.queues.find((x) => x.name === name);
      if (q) { renderCounts(q); refresh(); }
    },
  });
}
