// Approvals: the pending awaits of every run, most urgent first, with their deadlines (time left
// ticks every second) and what happens at the deadline. Approve one with a JSON payload (or a
// form, when the flow's await declares a schema) or leave it to time out. Refreshed as runs
// move (the events stream) and every few seconds; an approval being typed is kept.
import { ApiError, api, listAll, stream } from "../api.js";
import { schemaForm } from "../schemaform.js";
import { dl, field, h, notice, pageHead, poll, span, syncKeyed, throttle, tickRelative, when } from "../util.js";

const REFRESH_MS = 3000;
const SOON_S = 3600;
const ON_TIMEOUT = {
  fail: "the step fails (and with it the run)",
  continue: "the step runs without a payload",
  retry: "the await starts again",
};
const short = (id) => (id && id.length > 12 ? `…${id.slice(-12)}` : id || "");
const safeId = (text) => text.replace(/[^A-Za-z0-9_-]/g, "_");

function left(deadline, now = Date.now()) {
  if (!deadline) return { text: "no deadline", cls: "" };
  const s = (Date.parse(deadline) - now) / 1000;
  if (s <= 0) return { text: "deadline passed", cls: "overdue" };
  return { text: `${span(s)} left`, cls: s < SOON_S ? "soon" : "" };
}

function tickLeft(root) {
  const now = Date.now();
  for (const el of root.querySelectorAll("[data-left]")) {
    const { text, cls } = left(el.dataset.left, now);
    if (el.textContent !== text) el.textContent = text;
    el.classList.toggle("overdue", cls === "overdue");
    el.classList.toggle("soon", cls === "soon");
  }
}

export async function mount(main) {
  const query = new URLSearchParams(window.location.search);
  const flowSel = h("select", { id: "f-flow" }, h("option", { value: "" }, "All flows"));
  const message = h("div", { id: "approvals-message", "aria-live": "polite" });
  const tiles = h("div.tiles", { id: "approvals-stats" });
  const cards = h("div.await-cards", { id: "awaits" });
  const empty = h("div.panel.empty", { id: "no-awaits", hidden: true },
    h("h2", "Nothing is waiting"),
    h("p", "Steps with await_before or await_after (awaits.webhook, .event, .time, .until) show up here while their runs wait."));
  const runFilter = query.get("run");
  const scope = runFilter
    ? h("p.notice.info", { id: "run-filter" }, "Showing what run ", h("span.mono", runFilter), " waits for. ", h("a", { href: "/approvals" }, "Show every run"))
    : null;
  main.append(
    pageHead("Approvals", { sub: "Runs waiting for a person or a system. Approve one with a payload (the step gets it as ctx.awaited), or let it run into its deadline." }),
    message, scope, tiles,
    h("form.filters", { role: "search", onsubmit: (e) => e.preventDefault() }, field("Flow", flowSel)),
    cards, empty,
  );

  // the flows' await declarations: on_timeout, and a schema where one is declared
  const decls = new Map();
  async function loadDecls() {
    for (const flow of (await api("/api/flows")).items) {
      for (const a of flow.awaits || []) decls.set(`${flow.name}|${a.step}|${a.position}`, a);
    }
  }

  let items = [];
  const fail = (err) => message.replaceChildren(notice(err.message));

  const declsLoaded = loadDecls().catch((err) => console.warn(err)); // fetched alongside

  async function reload() {
    const list = await listAll("/api/awaits?status=pending", { max: 2000, limit: 500 });
    await declsLoaded; // cards are rendered once: with their declaration
    items = list;
    items.sort((a, b) => (Date.parse(a.deadline) || Infinity) - (Date.parse(b.deadline) || Infinity));
    render();
  }

  function card(a) {
    const decl = decls.get(`${a.flow}|${a.step}|${a.position}`) || {};
    const id = safeId(a.await_id);
    const approve = a.type === "webhook" || a.type === "event";
    const verb = approve ? "Approve" : "Resolve now";
    let form = null;
    let textarea = null;
    const errorEl = h("div.field-error", { id: `data-${id}-error`, role: "alert" });
    if (decl.schema) {
      form = schemaForm(decl.schema, { prefix: `data-${id}` });
    } else {
      textarea = h("textarea", {
        id: `data-${id}`, rows: 3, spellcheck: "false", placeholder: '{"approved": true, "by": "…"}',
        "aria-describedby": `data-${id}-hint data-${id}-error`,
      });
    }
    const submit = h("button.primary", { type: "submit", "data-action": "approve", "aria-label": `${verb}: step ${a.step} of run ${a.run_id}` }, verb);
    const resolveForm = h("form.resolve", { novalidate: true },
      form ? form.element : [
        h("label", { for: `data-${id}` }, "Payload (JSON, optional)"), textarea,
        h("div.hint", { id: `data-${id}-hint` }, "The step receives it as ctx.awaited; empty sends null."),
      ],
      errorEl, h("div.actions", submit));
    resolveForm.addEventListener("submit", async (event) => {
      event.preventDefault();
      errorEl.textContent = "";
      let data = null;
      if (form) {
        const r = form.read();
        if (r.errors.length) { form.showErrors(r.errors); return; }
        form.clear();
        data = r.value === undefined ? null : r.value;
      } else {
        textarea.removeAttribute("aria-invalid");
        const text = textarea.value.trim();
        if (text) {
          try { data = JSON.parse(text); } catch (err) {
            textarea.setAttribute("aria-invalid", "true");
            errorEl.textContent = `The payload is not valid JSON: ${err.message}. Nothing was sent.`;
            textarea.focus();
            return;
          }
        }
      }
      submit.disabled = true;
      try {
        const r = await api(`/api/awaits/${encodeURIComponent(a.await_id)}/resolve`, { method: "POST", body: { data } });
        const runId = r.run_id || a.run_id;
        message.replaceChildren(h("div.notice.info", { role: "status", id: "approved" },
          `${approve ? "Approved" : "Resolved"} step ${a.step} of ${a.flow}: run `,
          h("a", { href: `/runs/${encodeURIComponent(runId)}`, "data-run": runId, class: "mono" }, runId), " continues."));
        items = items.filter((x) => x.await_id !== a.await_id);
        render();
      } catch (err) {
        submit.disabled = false;
        if (err instanceof ApiError && (err.status === 410 || err.status === 404)) {
          message.replaceChildren(notice(`Step ${a.step} of run ${short(a.run_id)} is no longer waiting: ${err.message}`, "info"));
          reload().catch(fail);
        } else if (err instanceof ApiError && err.errors) {
          if (form) form.showErrors(err.errors, `The server did not accept the payload: ${err.message}`);
          else {
            textarea.setAttribute("aria-invalid", "true");
            errorEl.textContent = `${err.message}: ${err.errors.map((e) => `${(e.loc || []).join(".") || "payload"}: ${e.msg}`).join("; ")}`;
          }
        } else errorEl.textContent = err.message;
      }
    });
    const { text, cls } = left(a.deadline);
    const titleId = `await-${id}`;
    return h("article.panel.await-card", { "data-await": a.await_id, "data-run": a.run_id, "data-flow": a.flow, "aria-labelledby": titleId },
      h("div.await-head",
        h("h2", { id: titleId }, h("a", { href: `/flows/${encodeURIComponent(a.flow)}` }, a.flow), " · ", h("span.mono", a.step)),
        h("span.badge.awaiting", `${a.type} ${a.position}`)),
      h("p.left", { "data-left": a.deadline || "", class: cls }, text),
      dl([
        ["Run", h("a.mono", { href: `/runs/${encodeURIComponent(a.run_id)}` }, a.run_id)],
        ["Waiting since", when(a.registered_at)],
        ["Deadline", a.deadline ? when(a.deadline, { countdown: true }) : null],
        ["At the deadline", decl.on_timeout ? ON_TIMEOUT[decl.on_timeout] || decl.on_timeout : undefined],
        ["Webhook", a.url ? h("code.url", `${decl.method || "POST"} ${a.url}`) : undefined],
        ["Event", decl.name ? h("code", decl.name) : undefined],
      ]),
      resolveForm);
  }

  function render() {
    const chosen = flowSel.value || query.get("flow") || "";
    const flows = [...new Set([...items.map((a) => a.flow), ...(chosen ? [chosen] : [])])].sort();
    if (flowSel.dataset.flows !== JSON.stringify([flows, chosen])) {
      flowSel.dataset.flows = JSON.stringify([flows, chosen]);
      flowSel.replaceChildren(h("option", { value: "" }, "All flows"), ...flows.map((f) => h("option", { value: f, selected: f === chosen }, f)));
    }
    const shown = items.filter((a) => (!flowSel.value || a.flow === flowSel.value) && (!runFilter || a.run_id === runFilter));
    syncKeyed(cards, shown, (a) => a.await_id, card);
    empty.hidden = !!shown.length;
    const now = Date.now();
    const soon = items.filter((a) => a.deadline && Date.parse(a.deadline) - now < SOON_S * 1000 && Date.parse(a.deadline) > now).length;
    const overdue = items.filter((a) => a.deadline && Date.parse(a.deadline) <= now).length;
    const sig = JSON.stringify([items.length, soon, overdue]);
    if (tiles.dataset.sig !== sig) {
      tiles.dataset.sig = sig;
      tiles.replaceChildren(
        h("div.tile.awaiting", { "data-stat": "pending" }, h("div.n", String(items.length)), h("div.l", "pending")),
        h("div.tile", { "data-stat": "soon" }, h("div.n", String(soon)), h("div.l", "deadline within an hour")),
        h("div.tile", { "data-stat": "overdue", class: overdue ? "failed" : "" }, h("div.n", String(overdue)), h("div.l", "past the deadline")));
    }
  }

  flowSel.addEventListener("change", () => {
    const qs = new URLSearchParams(window.location.search);
    if (flowSel.value) qs.set("flow", flowSel.value); else qs.delete("flow");
    query.delete("flow");
    window.history.replaceState(null, "", qs.toString() ? `?${qs}` : window.location.pathname);
    render();
  });

  await reload();
  const refresh = throttle(() => reload().catch((err) => console.warn(err)), 800);
  stream("/api/events/stream", {
    onOpen: () => refresh(), // catch up on what happened while connecting
    onMessage({ event }) {
      // awaits open when a step completes and close when the awaited step starts or the run ends
      if (event === "step.completed" || event === "step.started" || event.startsWith("flow.")) refresh();
    },
  });
  poll(reload, REFRESH_MS);
  setInterval(() => { tickRelative(main); tickLeft(main); }, 1000);
}
