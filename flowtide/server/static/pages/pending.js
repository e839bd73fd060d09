// Triggers, schedules and approvals: their API routes arrive with later features (they answer
// 501 today), so these pages explain that and show what the flow definitions declare.
import { api } from "../api.js";
import { h, json, pageHead } from "../util.js";

const PAGES = {
  triggers: {
    title: "Triggers",
    text: "Trigger management (firing, pausing, fire history and replays) arrives with the triggers feature. Until then the triggers your flows declare are listed here, read-only.",
    pick: (flow) => flow.triggers.map((t) => ({ flow: flow.name, kind: t.type, name: t.name, detail: t })),
  },
  schedules: {
    title: "Schedules",
    text: "Schedules (next and last occurrences, counters) arrive with the scheduler feature. Until then the schedule triggers your flows declare are listed here, read-only.",
    pick: (flow) => flow.triggers.filter((t) => t.type === "schedule").map((t) => ({ flow: flow.name, kind: t.type, name: t.name, detail: t })),
  },
  approvals: {
    title: "Approvals",
    text: "Pending approvals (awaits a person or a system resolves) arrive with the awaits feature. Until then the awaits your flows declare are listed here, read-only.",
    pick: (flow) => flow.awaits.map((a) => ({ flow: flow.name, kind: `await ${a.type}`, name: `${a.position} ${a.step}`, detail: a })),
  },
};

export async function mount(main, params) {
  const section = document.body.dataset.section;
  const spec = PAGES[section];
  const flows = (await api("/api/flows")).items;
  let items = flows.flatMap(spec.pick);
  if (params.name) items = items.filter((it) => it.name === params.name);
  main.append(
    pageHead(params.name ? `${spec.title}: ${params.name}` : spec.title, params.name ? { crumbs: [h("a", { href: "/triggers" }, "Triggers"), " / "] } : {}),
    h("section.panel.empty", { id: "pending-feature" },
      h("div.big", { "aria-hidden": "true" }, "⏳"),
      h("h2", "Not available yet"),
      h("p", spec.text)),
    h("section.panel", { style: "margin-top:1rem", "aria-labelledby": "h-declared" },
      h("h2", { id: "h-declared" }, "Declared in your flows"),
      items.length
        ? h("table", { id: "declared" },
          h("thead", h("tr", ...["Flow", "Kind", "Name", "Options"].map((t) => h("th", { scope: "col" }, t)))),
          h("tbody", items.map((it) => h("tr",
            h("td", h("a", { href: `/flows/${encodeURIComponent(it.flow)}` }, it.flow)),
            h("td", h("span.badge", it.kind)),
            h("td.mono", it.name),
            h("td.mono.muted", json(it.detail, 0))))))
        : h("p.muted", "None declared.")),
  );
}
