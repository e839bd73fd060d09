// One run: graph with live step statuses, timeline of every event, logs, a waterfall of step
// durations, the state at any past event (time travel), and cancel / restart / retry.
import { api, listAll, stream } from "../api.js";
import { drawGraph } from "../graph.js";
import {
  badge, badgeHTML, debounce, dl, duration, esc, field, h, json, ms, notice, pageHead, renderChunked, throttle, time,
} from "../util.js";
import { stepOptions } from "./flow.js";

const TERMINAL = { "flow.completed": "completed", "flow.failed": "failed", "flow.canceled": "canceled", "flow.stalled": "stalled" };
const ACTIVE = new Set(["running", "awaiting"]);
const GROUPS = [["", "All events"], ["lifecycle", "Flow and step"], ["emit", "Emits"], ["state", "State changes"], ["log", "Logs"], ["await", "Awaits"]];
const LEVELS = ["debug", "info", "warning", "error", "critical"];

/** The RunView of DESIGN A9 folded from events (the same rules as flowtide.events.reduce_view). */
export function newView() {
  return { status: "running", input: null, trigger: null, started_at: null, completed_at: null, error: null, result: null, steps: {}, awaits: [] };
}

export function applyEvent(view, ev) {
  const kind = ev.type, name = ev.step, data = ev.data || {};
  if (kind === "flow.started") {
    view.input = data.input ?? null; view.trigger = data.trigger ?? null; view.started_at = ev.ts;
  } else if (kind in TERMINAL) {
    view.status = TERMINAL[kind]; view.completed_at = ev.ts;
    view.error = data.error ?? null; view.result = data.result ?? null;
  } else if (kind.startsWith("step.") && name) {
    const st = (view.steps[name] ||= { status: "pending", attempts: 0, started_at: null, completed_at: null, result: null, error: null });
    if (kind === "step.started") {
      st.status = "running"; st.attempts = ev.attempt || st.attempts + 1; st.started_at ||= ev.ts;
    } else if (kind === "step.completed") {
      st.status = "completed"; st.completed_at = ev.ts; st.result = data.result ?? null; st.error = null;
    } else if (kind === "step.retrying") {
      st.status = "retrying"; st.error = data.error ?? null;
    } else if (kind === "step.failed") {
      st.status = "failed"; st.completed_at = ev.ts; st.error = data.error ?? null;
    } else if (kind === "step.stalled") st.status = "stalled";
  } else if (kind.startsWith("await.")) {
    if (kind === "await.registered") {
      view.awaits.push({ step: name, status: "pending", ...data });
      if (view.status === "running") view.status = "awaiting";
    } else {
      for (const a of view.awaits) {
        if (a.step === name && a.position === data.position && a.status === "pending") a.status = kind === "await.resolved" ? "resolved" : "timed_out";
      }
      if (view.status === "awaiting" && !view.awaits.some((a) => a.status === "pending")) view.status = "running";
    }
  }
}

function group(type) {
  if (type.startsWith("flow.") || type.startsWith("step.")) return "lifecycle";
  if (type.startsWith("await.")) return "await";
  return type;
}

function errorBlock(error) {
  if (!error) return null;
  return h("div",
    h("div.error", `${error.type || "Error"}: ${error.message || ""}`),
    error.traceback ? h("details", h("summary", "Traceback"), h("pre", error.traceback)) : null);
}

export async function mount(main, params) {
  const runId = params.run_id;
  const enc = encodeURIComponent(runId);
  const historyRequest = listAll(`/api/runs/${enc}/events`, { max: 1e6, limit: 5000 });
  historyRequest.catch(() => {}); // awaited below; the view's 404 is the error to show
  const apiView = await api(`/api/runs/${enc}`);
  const [flow, history] = await Promise.all([
    api(`/api/flows/${encodeURIComponent(apiView.flow)}`).catch(() => null),
    historyRequest,
  ]);
  const events = [];
  const bySeq = new Map();
  const view = newView();
  let selected = null;

  // -- head and actions -----------------------------------------------------------------------
  const statusEl = h("span", { id: "run-status" });
  const message = h("div", { id: "run-message", "aria-live": "polite" });
  const cancelBtn = h("button.danger", { type: "button", id: "cancel" }, "Cancel run");
  const restartBtn = h("button", { type: "button", id: "restart" }, "Restart");
  cancelBtn.addEventListener("click", async () => {
    cancelBtn.disabled = true;
    try {
      await api(`/api/runs/${enc}/cancel`, { method: "POST" });
      message.replaceChildren(notice("Cancel requested.", "info"));
    } catch (err) {
      message.replaceChildren(notice(err.message));
      cancelBtn.disabled = !ACTIVE.has(view.status);
    }
  });
  restartBtn.addEventListener("click", async () => {
    restartBtn.disabled = true;
    try {
      const r = await api(`/api/runs/${enc}/restart`, { method: "POST" });
      window.location.href = `/runs/${encodeURIComponent(r.run_id)}`;
    } catch (err) {
      message.replaceChildren(notice(err.message));
      restartBtn.disabled = false;
    }
  });

  // -- panels ---------------------------------------------------------------------------------
  const summary = h("div", { id: "run-summary" });
  const stepPanel = h("div", { id: "step-details", "aria-live": "polite" }, h("p.muted", "Select a step in the graph."));
  const graph = flow ? drawGraph(flow, { onSelect: (name) => { selected = name; graph.select(name); renderStep(); } }) : null;
  const waterfall = h("div", { id: "waterfall" });
  const slider = h("input", { type: "range", id: "state-at", min: 0, max: 0, step: 1, value: 0 });
  const sliderLabel = h("output", { id: "state-at-label", for: "state-at" });
  const stateOut = h("pre", { id: "state" }, "{}");
  const typeSel = h("select", { id: "t-type" }, GROUPS.map(([v, l]) => h("option", { value: v }, l)));
  const timelineInfo = h("span.muted", { id: "timeline-count" });
  const timelineBody = h("tbody", { id: "timeline-rows" });
  const timeline = h("div.timeline", { id: "timeline" }, h("table",
    h("caption.sr-only", "Events of this run; select a row to see its data"),
    h("thead", h("tr", ...["#", "Time", "+", "Type", "Step", "Attempt", "Data"].map((t) => h("th", { scope: "col" }, t)))),
    timelineBody));
  const levelSel = h("select", { id: "l-level" }, h("option", { value: "" }, "All levels"), LEVELS.map((l) => h("option", { value: l }, `${l} and above`)));
  const stepSel = h("select", { id: "l-step" }, h("option", { value: "" }, "All steps"), (flow ? flow.steps : []).map((st) => h("option", { value: st.name }, st.name)));
  const logSearch = h("input", { id: "l-search", type: "search", placeholder: "text in message", autocomplete: "off" });
  const logs = h("div.logs", { id: "logs", role: "log", "aria-label": "Run logs" });

  main.append(
    pageHead(h("span", "Run ", h("span.mono", runId)), {
      crumbs: [h("a", { href: "/runs" }, "Runs"), " / ", h("a", { href: `/flows/${encodeURIComponent(apiView.flow)}` }, apiView.flow), " / "],
      actions: [statusEl, cancelBtn, restartBtn],
    }),
    message,
    h("div.split",
      h("div.stack",
        h("section.panel", { "aria-labelledby": "h-graph" }, h("h2", { id: "h-graph" }, "Graph"),
          graph ? h("div.graph-wrap", graph.svg) : notice("This flow is not defined in the running app.", "info")),
        h("section.panel", { "aria-labelledby": "h-step" }, h("h2", { id: "h-step" }, "Step"), stepPanel)),
      h("section.panel", { "aria-labelledby": "h-sum" }, h("h2", { id: "h-sum" }, "Run"), summary)),
    h("div.grid.two", { style: "margin-top:1rem" },
      h("section.panel", { "aria-labelledby": "h-wf" }, h("h2", { id: "h-wf" }, "Step durations"), waterfall),
      h("section.panel", { "aria-labelledby": "h-state" }, h("h2", { id: "h-state" }, "State (time travel)"),
        h("div.slider", h("label", { for: "state-at" }, "As of event"), slider), sliderLabel, stateOut)),
    h("section.panel", { style: "margin-top:1rem", "aria-labelledby": "h-tl" },
      h("div.page-head", h("h2", { id: "h-tl" }, "Timeline"), h("div.actions.filters", field("Show", typeSel), timelineInfo)),
      timeline),
    h("section.panel", { style: "margin-top:1rem", "aria-labelledby": "h-logs" },
      h("h2", { id: "h-logs" }, "Logs"),
      h("div.filters", field("Level", levelSel), field("Step", stepSel), field("Search", logSearch)),
      logs),
  );

  // -- rendering ------------------------------------------------------------------------------
  const startMs = () => ms(view.started_at) ?? (events.length ? ms(events[0].ts) : Date.now());

  function renderHead() {
    statusEl.replaceChildren(badge(view.status));
    statusEl.dataset.status = view.status;
    cancelBtn.disabled = !ACTIVE.has(view.status);
  }

  function renderSummary() {
    const end = ms(view.completed_at);
    summary.replaceChildren(dl([
      ["Status", badge(view.status)],
      ["Started", time(view.started_at)],
      ["Ended", view.completed_at ? time(view.completed_at) : null],
      ["Duration", duration((end ?? Date.now()) - startMs())],
      ["Trigger", view.trigger ? h("code", json(view.trigger, 0)) : null],
      ["Input", h("pre", json(view.input))],
      view.result !== null ? ["Result", h("pre", { id: "run-result" }, json(view.result))] : ["Result", undefined],
      view.error ? ["Error", errorBlock(view.error)] : ["Error", undefined],
      view.awaits.length ? ["Awaits", h("div", view.awaits.map((a) => h("div", badge(a.status), ` ${a.type || "await"} ${a.position || ""} ${a.step}`,
        a.status === "pending" ? [" · ", h("a", { href: `/approvals?run=${enc}`, id: "approve-link" }, "approve or see its deadline")] : null)))] : ["Awaits", undefined],
    ]));
  }

  function renderStep() {
    if (!selected) return;
    const st = view.steps[selected];
    const def = flow && flow.steps.find((x) => x.name === selected);
    const retry = h("button", { type: "button", id: "retry-step" }, "Retry step");
    retry.addEventListener("click", async () => {
      retry.disabled = true;
      try {
        await api(`/api/jobs/${encodeURIComponent(`${runId}:${selected}`)}/retry`, { method: "POST" });
        message.replaceChildren(notice(`Step ${selected} is queued again.`, "info"));
      } catch (err) {
        message.replaceChildren(notice(err.message));
        retry.disabled = false;
      }
    });
    stepPanel.replaceChildren(
      h("h3", `Step ${selected}`),
      dl([
        ["Status", badge(st ? st.status : "pending")],
        ["Attempts", st ? String(st.attempts) : "0"],
        ["Started", st && st.started_at ? time(st.started_at) : null],
        ["Ended", st && st.completed_at ? time(st.completed_at) : null],
        ["Duration", st && st.started_at && st.completed_at ? duration(ms(st.completed_at) - ms(st.started_at)) : null],
        ["Result", st && st.result !== null ? h("pre", json(st.result)) : undefined],
        ["Error", st && st.error ? errorBlock(st.error) : undefined],
      ]),
      st && st.status === "failed"
        ? h("p", retry, ACTIVE.has(view.status) ? "" : h("span.muted", " The run has ended: restart it to run everything again."))
        : null,
      def ? h("details", h("summary", "Options"), stepOptions(def)) : null,
    );
    if (st && st.status === "failed") retry.disabled = !ACTIVE.has(view.status);
  }

  function renderWaterfall() {
    const steps = Object.entries(view.steps).filter(([, st]) => st.started_at).sort((a, b) => ms(a[1].started_at) - ms(b[1].started_at));
    if (!steps.length) {
      waterfall.replaceChildren(h("p.muted", "No step has started yet."));
      return;
    }
    const t0 = startMs();
    const t1 = Math.max(ms(view.completed_at) ?? Date.now(), ...steps.map(([, st]) => ms(st.completed_at) ?? Date.now()));
    const span = Math.max(1, t1 - t0);
    const grid = h("div.waterfall", { role: "list" });
    for (const [name, st] of steps) {
      const a = ms(st.started_at), b = ms(st.completed_at) ?? Date.now();
      const bar = h("div.bar", { class: st.status, style: `left:${((a - t0) / span) * 100}%;width:${Math.max(0.3, ((b - a) / span) * 100)}%` });
      grid.append(
        h("div", { role: "listitem", class: "mono", "data-step": name }, name),
        h("div.track", { title: `${name}: ${st.status}, ${duration(b - a)}`, "aria-hidden": "true" }, bar),
        h("div.muted.num", `${duration(b - a)}${st.completed_at ? "" : "…"}`));
    }
    waterfall.replaceChildren(grid, h("p.muted", `Total ${duration(t1 - t0)}`));
  }

  function rowHTML(ev, t0 = startMs()) {
    let data = ev.data === null || ev.data === undefined ? "" : JSON.stringify(ev.data);
    if (data.length > 240) data = `${data.slice(0, 240)}…`;
    const offset = duration(ms(ev.ts) - t0);
    return `<tr class="ev" data-seq="${ev.seq}" tabindex="-1"><td class="num">${ev.seq}</td><td class="muted">${esc(time(ev.ts))}</td>` +
      `<td class="muted num">${esc(offset)}</td><td><span class="badge ${esc(ev.type.split(".").pop())}">${esc(ev.type)}</span></td><td>${esc(ev.step || "")}</td>` +
      `<td class="num">${ev.attempt ?? ""}</td><td class="data">${esc(data)}</td></tr>`;
  }

  const matches = (ev) => !typeSel.value || group(ev.type) === typeSel.value;

  let stopTimeline = () => {};
  let timelineDone = false;
  function renderTimeline() {
    const shown = events.filter(matches);
    const t0 = startMs();
    stopTimeline();
    timelineDone = false;
    stopTimeline = renderChunked(timelineBody, shown, (ev) => rowHTML(ev, t0), {
      done: () => { timelineDone = true; highlight(Number(slider.value)); },
    });
    const first = timelineBody.firstElementChild;
    if (first) first.tabIndex = 0;
    timelineInfo.textContent = `${shown.length} of ${events.length} events`;
    highlight(Number(slider.value));
  }

  function appendTimeline(batch) {
    if (!timelineDone) { renderTimeline(); return; } // still rendering the history: start over
    const shown = batch.filter(matches);
    if (shown.length) {
      const atEnd = timeline.scrollTop + timeline.clientHeight >= timeline.scrollHeight - 20;
      timelineBody.insertAdjacentHTML("beforeend", shown.map((ev) => rowHTML(ev)).join(""));
      if (!timelineBody.querySelector("tr[tabindex='0']")) timelineBody.firstElementChild.tabIndex = 0;
      if (atEnd) timeline.scrollTop = timeline.scrollHeight;
    }
    timelineInfo.textContent = `${timelineBody.childElementCount} of ${events.length} events`;
  }

  function toggleRow(row) {
    const ev = bySeq.get(Number(row.dataset.seq));
    if (!ev) return;
    const cell = row.querySelector("td.data");
    const open = row.classList.toggle("open");
    row.setAttribute("aria-expanded", String(open));
    if (open) cell.textContent = json(ev.data);
    else {
      const text = ev.data === null || ev.data === undefined ? "" : JSON.stringify(ev.data);
      cell.textContent = text.length > 240 ? `${text.slice(0, 240)}…` : text;
    }
  }

  timelineBody.addEventListener("click", (event) => {
    const row = event.target.closest("tr.ev");
    if (row) { row.focus(); toggleRow(row); }
  });
  timelineBody.addEventListener("keydown", (event) => {
    const row = event.target.closest("tr.ev");
    if (!row) return;
    let target = null;
    if (event.key === "ArrowDown") target = row.nextElementSibling;
    else if (event.key === "ArrowUp") target = row.previousElementSibling;
    else if (event.key === "Home") target = timelineBody.firstElementChild;
    else if (event.key === "End") target = timelineBody.lastElementChild;
    else if (event.key === "Enter" || event.key === " ") { event.preventDefault(); toggleRow(row); return; }
    if (target) {
      event.preventDefault();
      row.tabIndex = -1;
      target.tabIndex = 0;
      target.focus();
    }
  });
  typeSel.addEventListener("change", renderTimeline);

  let stopLogs = () => {};
  function renderLogs() {
    const min = levelSel.value ? LEVELS.indexOf(levelSel.value) : -1;
    const step = stepSel.value;
    const text = logSearch.value.trim().toLowerCase();
    const shown = [];
    for (const ev of events) {
      if (ev.type !== "log") continue;
      const d = ev.data || {};
      if (min >= 0 && LEVELS.indexOf(d.level) < min) continue;
      if (step && ev.step !== step) continue;
      const fields = d.fields && Object.keys(d.fields).length ? ` ${JSON.stringify(d.fields)}` : "";
      const msg = `${d.message || ""}${fields}`;
      if (text && !msg.toLowerCase().includes(text)) continue;
      shown.push([ev, d, msg]);
    }
    stopLogs();
    if (!shown.length) {
      logs.innerHTML = `<p class="muted">No log lines${min >= 0 || step || text ? " match" : ""}.</p>`;
      return;
    }
    stopLogs = renderChunked(logs, shown, ([ev, d, msg]) =>
      `<div class="line" data-level="${esc(d.level)}"><span class="muted">${esc(time(ev.ts))}</span>${badgeHTML(d.level || "info")}` +
      `<span>${esc(ev.step || "")}</span><span>${esc(msg)}</span></div>`);
  }
  levelSel.addEventListener("change", renderLogs);
  stepSel.addEventListener("change", renderLogs);
  logSearch.addEventListener("input", debounce(renderLogs, 150));

  // -- time travel ----------------------------------------------------------------------------
  let follow = true;
  let stateRequest = null;
  function highlight(seq) {
    const old = timelineBody.querySelector("tr.at");
    if (old) old.classList.remove("at");
    const row = timelineBody.querySelector(`tr[data-seq="${seq}"]`);
    if (row) row.classList.add("at");
    return row;
  }
  function labelSlider() {
    const seq = Number(slider.value);
    const ev = bySeq.get(seq);
    sliderLabel.textContent = ev ? `#${seq} of ${events.length}: ${ev.type}${ev.step ? ` (${ev.step})` : ""} at ${time(ev.ts)}` : `before the first event`;
    slider.setAttribute("aria-valuetext", sliderLabel.textContent);
  }
  async function loadState() {
    if (stateRequest) stateRequest.abort();
    const controller = (stateRequest = new AbortController());
    try {
      const r = await api(`/api/runs/${enc}/state?at=${Number(slider.value)}`, { signal: controller.signal });
      if (Number(slider.value) === r.at || follow) stateOut.textContent = json(r.state);
      stateOut.dataset.at = String(r.at);
    } catch (err) {
      if (err.name !== "AbortError") stateOut.textContent = err.message;
    }
  }
  const loadStateSoon = debounce(loadState, 80);
  slider.addEventListener("input", () => {
    follow = Number(slider.value) === Number(slider.max);
    labelSlider();
    const row = highlight(Number(slider.value));
    if (row) row.scrollIntoView({ block: "nearest" });
    loadStateSoon();
  });
  const followState = throttle(loadState, 400);

  // -- events ---------------------------------------------------------------------------------
  function ingest(batch) {
    const fresh = batch.filter((ev) => !bySeq.has(ev.seq));
    for (const ev of fresh) {
      events.push(ev);
      bySeq.set(ev.seq, ev);
      applyEvent(view, ev);
    }
    return fresh;
  }

  function renderAll(withLogs = true) {
    renderHead();
    renderSummary();
    if (graph) graph.setStatuses(view.steps);
    renderStep();
    renderWaterfall();
    if (withLogs) renderLogs();
  }

  ingest(history);
  const last = events.length ? events[events.length - 1].seq : 0;
  slider.max = String(last);
  slider.value = String(last);
  labelSlider();
  renderAll();
  renderTimeline();
  main.dataset.renderedAt = String(Math.round(performance.now()));
  loadState();

  if (!ACTIVE.has(view.status) && view.completed_at) return;

  let pending = [];
  let flushTimer = null;
  const flush = () => {
    flushTimer = null;
    const fresh = ingest(pending);
    pending = [];
    if (!fresh.length) return;
    appendTimeline(fresh);
    if (fresh.some((ev) => ev.type === "state" || ev.seq > Number(slider.max))) {
      slider.max = String(events[events.length - 1].seq);
      if (follow) { slider.value = slider.max; followState(); }
      labelSlider();
    }
    renderAll(fresh.some((ev) => ev.type === "log"));
    if (fresh.some((ev) => ev.type in TERMINAL)) {
      api(`/api/runs/${enc}`).then((v) => { view.error = v.error; view.result = v.result; renderSummary(); }).catch(() => {});
    }
  };
  const ticker = setInterval(() => {
    if (!ACTIVE.has(view.status)) { clearInterval(ticker); return; }
    renderWaterfall();
  }, 1000);
  stream(`/api/runs/${enc}/stream`, {
    lastId: last,
    done: () => !ACTIVE.has(view.status) || pending.some((ev) => ev.type in TERMINAL),
    onMessage({ data }) {
      if (!data || typeof data.seq !== "number") return;
      pending.push(data);
      if (!flushTimer) flushTimer = setTimeout(flush, 30);
    },
  });
}
