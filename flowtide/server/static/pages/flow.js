// One flow: its graph (click a step for its options), start a run, triggers, recent runs.
import { api, stream } from "../api.js";
import { drawGraph } from "../graph.js";
import { badgeHTML, dl, esc, h, json, notice, pageHead, throttle, time } from "../util.js";

export function stepOptions(step) {
  return dl([
    ["Entry", step.entry ? "yes" : "no"],
    ["Subscribes", step.subscribes.length ? step.subscribes.join(", ") : null],
    ["Emits", step.emits.length ? step.emits.join(", ") : null],
    ["Queue", step.queue],
    ["Retries", String(step.retries)],
    ["Timeout", step.timeout === null ? null : `${step.timeout} s`],
    ["Runtime", step.runtime],
    ["Optional", step.optional ? "yes" : "no"],
    ["Level", String(step.level)],
    ["Await before", step.await_before ? h("code", json(step.await_before, 0)) : null],
    ["Await after", step.await_after ? h("code", json(step.await_after, 0)) : null],
  ]);
}

export async function mount(main, params) {
  const flow = await api(`/api/flows/${encodeURIComponent(params.flow)}`);
  const details = h("div", { id: "step-details", "aria-live": "polite" },
    h("p.muted", "Select a step in the graph to see its options."));
  const graph = drawGraph(flow, {
    onSelect(name) {
      const step = flow.steps.find((st) => st.name === name);
      graph.select(name);
      details.replaceChildren(h("h3", `Step ${name}`), stepOptions(step));
    },
  });

  const input = h("textarea", { id: "run-input", spellcheck: "false" }, "{}");
  const startError = h("p.error", { role: "alert" });
  const start = h("form", {
    async onsubmit(event) {
      event.preventDefault();
      startError.textContent = "";
      let value;
      try { value = input.value.trim() ? JSON.parse(input.value) : null; } catch (err) {
        startError.textContent = `The input is not valid JSON: ${err.message}`;
        return;
      }
      try {
        const r = await api(`/api/flows/${encodeURIComponent(flow.name)}/runs`, { method: "POST", body: { input: value } });
        window.location.href = `/runs/${encodeURIComponent(r.run_id)}`;
      } catch (err) {
        startError.textContent = err.message;
      }
    },
  },
  h("label", { for: "run-input" }, "Input (JSON)"), input, startError,
  h("button.primary", { type: "submit", id: "start-run" }, "Start run"));

  const runs = h("div.table-wrap", { id: "flow-runs" });
  main.append(
    pageHead(flow.name, {
      crumbs: [h("a", { href: "/flows" }, "Flows"), " / "],
      sub: flow.description || undefined,
      actions: [h("a.button", { href: `/runs?flow=${encodeURIComponent(flow.name)}` }, "All runs")],
    }),
    h("div.split",
      h("section.panel", { "aria-labelledby": "h-graph" }, h("h2", { id: "h-graph" }, "Graph"),
        h("div.graph-wrap", graph.svg),
        h("p.muted", "Steps are laid out by level; edges carry the events that connect them. Use Tab and Enter to select a step.")),
      h("div.stack",
        h("section.panel", { "aria-labelledby": "h-step" }, h("h2", { id: "h-step" }, "Step"), details),
        h("section.panel", { "aria-labelledby": "h-start" }, h("h2", { id: "h-start" }, "Start a run"), start))),
    h("div.grid.two", { style: "margin-top:1rem" },
      h("section.panel", { "aria-labelledby": "h-runs" }, h("h2", { id: "h-runs" }, "Recent runs"), runs),
      h("section.panel", { "aria-labelledby": "h-trig" }, h("h2", { id: "h-trig" }, "Triggers and awaits"),
        flow.triggers.length
          ? h("ul", flow.triggers.map((t) => h("li", h("span.badge", t.type), " ", h("a", { href: `/triggers/${encodeURIComponent(t.name)}` }, h("code", t.name)), " ", h("span.muted", json(Object.fromEntries(Object.entries(t).filter(([k]) => !["name", "type"].includes(k))), 0)))))
          : h("p.muted", "No triggers: runs start through the API, the CLI or other flows."),
        flow.awaits.length
          ? h("ul", flow.awaits.map((a) => h("li", h("span.badge.awaiting", `await ${a.type}`), ` ${a.position} `, h("code", a.step))))
          : h("p.muted", "No step awaits anything."))),
  );

  async function loadRuns() {
    const items = (await api(`/api/runs?flow=${encodeURIComponent(flow.name)}&limit=10`)).items;
    runs.innerHTML = items.length
      ? `<table><thead><tr><th scope="col">Run</th><th scope="col">Status</th><th scope="col">Started</th></tr></thead><tbody>${items.map((r) =>
        `<tr><td><a class="mono" href="/runs/${encodeURIComponent(r.run_id)}">${esc(r.run_id)}</a></td><td>${badgeHTML(r.status)}</td><td class="muted">${esc(time(r.started_at))}</td></tr>`).join("")}</tbody></table>`
      : `<p class="muted">No runs of this flow yet.</p>`;
  }
  await loadRuns().catch((err) => runs.replaceChildren(notice(err.message)));
  const refresh = throttle(() => loadRuns().catch((err) => console.warn(err)), 1000);
  stream("/api/events/stream", {
    onMessage({ event, data }) {
      if (event.startsWith("flow.") && data.flow === flow.name) refresh();
    },
  });
}
