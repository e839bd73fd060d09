// Flows: every flow with its steps, triggers and run counts; each links to its graph.
import { api } from "../api.js";
import { badge, h, pageHead, time } from "../util.js";

export async function mount(main) {
  const flows = (await api("/api/flows")).items;
  main.append(pageHead("Flows", { sub: `${flows.length} flow${flows.length === 1 ? "" : "s"} defined` }));
  if (!flows.length) {
    main.append(h("div.panel.empty", h("h2", "No flows are defined"), h("p", "Define a Flow in your app's modules and it appears here.")));
    return;
  }
  main.append(h("div.panel.table-wrap", h("table", { id: "flows" },
    h("thead", h("tr", ...["Flow", "Description", "Steps", "Triggers", "Runs", "Last run"].map((t) => h("th", { scope: "col" }, t)))),
    h("tbody", flows.map((f) => h("tr", { "data-flow": f.name },
      h("th", { scope: "row" }, h("a", { href: `/flows/${encodeURIComponent(f.name)}` }, f.name)),
      h("td", f.description || h("span.muted", "—")),
      h("td", f.steps.length),
      h("td", f.triggers.length ? f.triggers.map((t) => h("span.badge", `${t.type} ${t.name}`)) : h("span.muted", "—")),
      h("td", h("div.counts", Object.entries(f.stats.by_status).filter(([, n]) => n).map(([st, n]) => h("span", badge(st), " ", n)))),
      h("td.muted", time(f.stats.last_started_at))))))));
}
