// Queues: job counts per state, pause and resume; live from the events stream's `stats`.
import { api, stream } from "../api.js";
import { badge, h, notice, pageHead } from "../util.js";

export const STATES = ["waiting", "active", "delayed", "completed", "failed", "canceled"];

export function pauseButton(queue, onDone) {
  const button = h("button.small", { type: "button", "data-action": queue.paused ? "resume" : "pause", "aria-label": `${queue.paused ? "Resume" : "Pause"} queue ${queue.name}` }, queue.paused ? "Resume" : "Pause");
  button.addEventListener("click", async () => {
    button.disabled = true;
    try {
      const r = await api(`/api/queues/${encodeURIComponent(queue.name)}/${queue.paused ? "resume" : "pause"}`, { method: "POST" });
      onDone(r.paused);
    } catch (err) {
      button.replaceWith(notice(err.message));
    }
  });
  return button;
}

export async function mount(main) {
  const body = h("div.table-wrap", { id: "queues" });
  main.append(pageHead("Queues", { sub: "Jobs per state in every queue. Paused queues keep their jobs; workers claim none." }), h("section.panel", body));
  let queues = [];
  const reload = async () => { queues = (await api("/api/queues")).items; render(); };
  function render() {
    if (!queues.length) {
      body.replaceChildren(h("div.empty", h("h2", "No queues yet"), h("p", "Queues appear when flows or functions declare them.")));
      return;
    }
    body.replaceChildren(h("table",
      h("thead", h("tr", h("th", { scope: "col" }, "Queue"), ...STATES.map((st) => h("th.num", { scope: "col" }, st)), h("th", { scope: "col" }, "State"), h("th", { scope: "col" }, h("span.sr-only", "Actions")))),
      h("tbody", queues.map((q) => h("tr", { "data-queue": q.name },
        h("th", { scope: "row" }, h("a", { href: `/queues/${encodeURIComponent(q.name)}` }, q.name)),
        ...STATES.map((st) => h("td.num", { "data-state": st }, q.counts[st] ? h("a", { href: `/queues/${encodeURIComponent(q.name)}?state=${st}` }, String(q.counts[st])) : "0")),
        h("td", q.paused ? badge("paused") : badge("ok")),
        h("td", pauseButton(q, () => reload().catch((err) => body.prepend(notice(err.message))))))))));
  }
  await reload();
  stream("/api/events/stream", {
    onMessage({ event, data }) {
      if (event === "stats") { queues = data.queues; render(); }
    },
  });
}
