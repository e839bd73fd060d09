// A flow's graph as SVG: steps are nodes in columns by level (FlowGraph.describe()["levels"]),
// ordered within a level to limit edge crossings; edges are labelled with the event names.
import { s } from "./util.js";

const NODE_H = 54;
const GAP_Y = 26;
const PAD = 24;
let instances = 0;

function textWidth(text, px) {
  return text.length * px * 0.6;
}

/** Positions of every step: {name: {x, y, level, index}} plus the canvas size. */
export function layout(flow) {
  const levels = flow.levels.map((names) => [...names]);
  const preds = {};
  for (const e of flow.edges) (preds[e.to] ||= []).push(e.from);
  const succs = {};
  for (const e of flow.edges) (succs[e.from] ||= []).push(e.to);
  const widest = Math.max(...flow.steps.map((st) => Math.max(textWidth(st.name, 13) + 56, textWidth(stepSubline(st), 11) + 30)), 0);
  const nodeW = Math.min(300, Math.max(150, widest));
  const labels = {};
  for (const e of flow.edges) (labels[`${e.from}\u0000${e.to}`] ||= []).push(e.token);
  const longestLabel = Math.max(0, ...Object.values(labels).map((l) => l.join(", ").length));
  const gapX = Math.max(90, Math.min(260, textWidth("x".repeat(longestLabel), 11) + 36));

  // Barycenter ordering: a few down and up sweeps.
  const order = {};
  levels.forEach((names) => names.forEach((n, i) => { order[n] = i; }));
  const sweep = (list, neighbours) => {
    const bary = (n) => {
      const ns = (neighbours[n] || []).filter((m) => m in order);
      return ns.length ? ns.reduce((a, m) => a + order[m], 0) / ns.length : order[n];
    };
    list.sort((a, b) => bary(a) - bary(b) || a.localeCompare(b));
    list.forEach((n, i) => { order[n] = i; });
  };
  for (let pass = 0; pass < 3; pass += 1) {
    for (let i = 1; i < levels.length; i += 1) sweep(levels[i], preds);
    for (let i = levels.length - 2; i >= 0; i -= 1) sweep(levels[i], succs);
  }

  const tallest = Math.max(1, ...levels.map((l) => l.length));
  const height = PAD * 2 + tallest * NODE_H + (tallest - 1) * GAP_Y + 8;
  const pos = {};
  levels.forEach((names, level) => {
    const columnH = names.length * NODE_H + (names.length - 1) * GAP_Y;
    const top = (height - columnH) / 2;
    names.forEach((name, index) => {
      pos[name] = { x: PAD + level * (nodeW + gapX), y: top + index * (NODE_H + GAP_Y), level, index };
    });
  });
  const width = PAD * 2 + levels.length * nodeW + Math.max(0, levels.length - 1) * gapX;
  return { pos, width, height, nodeW, labels };
}

function pill(text, x, y, kind) {
  const w = textWidth(text, 10) + 10;
  return s("g", { class: `pill ${kind}`, transform: `translate(${x - w},${y})` },
    s("rect", { width: w, height: 15, rx: 7.5 }),
    s("text", { x: w / 2, y: 11, "text-anchor": "middle" }, text));
}

function bezier(x1, y1, x2, y2, t) {
  const dx = (x2 - x1) / 2;
  const p = [[x1, y1], [x1 + dx, y1], [x2 - dx, y2], [x2, y2]];
  const u = 1 - t;
  const c = [u * u * u, 3 * u * u * t, 3 * u * t * t, t * t * t];
  return [0, 1].map((k) => p.reduce((a, pt, i) => a + c[i] * pt[k], 0));
}

function stepSubline(step) {
  const parts = [];
  if (step.entry) parts.push("entry");
  if (step.queue) parts.push(`queue ${step.queue}`);
  if (step.retries) parts.push(`${step.retries} ${step.retries === 1 ? "retry" : "retries"}`);
  if (step.optional) parts.push("optional");
  if (step.runtime && step.runtime !== "python") parts.push(step.runtime);
  return parts.join(" · ");
}

/**
 * Draw `flow`. Returns {svg, setStatuses({step: {status, attempts}}), select(name)}.
 * onSelect(name) is called when a step is clicked or activated with Enter/Space.
 */
export function drawGraph(flow, { onSelect } = {}) {
  const id = `g${(instances += 1)}`;
  const { pos, width, height, nodeW, labels } = layout(flow);
  const steps = Object.fromEntries(flow.steps.map((st) => [st.name, st]));
  const svg = s("svg", {
    class: "graph", width, height, viewBox: `0 0 ${width} ${height}`, role: "group",
    "aria-label": `Graph of flow ${flow.name}: ${flow.steps.length} steps`,
  });
  svg.append(s("defs", {}, s("marker", {
    id: `${id}-arrow`, viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 7, markerHeight: 7,
    orient: "auto-start-reverse",
  }, s("path", { d: "M0,0 L10,5 L0,10 z", class: "arrow" }))));

  const edgeLayer = s("g", { class: "edges", "aria-hidden": "true" });
  const labelLayer = s("g", { class: "labels", "aria-hidden": "true" });
  for (const [key, tokens] of Object.entries(labels)) {
    const [from, to] = key.split("\u0000");
    const a = pos[from], b = pos[to];
    if (!a || !b) continue;
    const x1 = a.x + nodeW, y1 = a.y + NODE_H / 2, x2 = b.x - 2, y2 = b.y + NODE_H / 2;
    const dx = (x2 - x1) / 2;
    edgeLayer.append(s("g", { class: "edge", "data-from": from, "data-to": to },
      s("path", { d: `M${x1},${y1} C${x1 + dx},${y1} ${x2 - dx},${y2} ${x2},${y2}`, "marker-end": `url(#${id}-arrow)` })));
    const text = [...new Set(tokens)].join(", ");
    const [lx, ly] = bezier(x1, y1, x2, y2, 0.5);
    const w = textWidth(text, 11) + 8;
    labelLayer.append(s("g", { class: "edge-label" },
      s("rect", { x: lx - w / 2, y: ly - 8, width: w, height: 15, rx: 3 }),
      s("text", { x: lx, y: ly + 3.5, "text-anchor": "middle" }, text)));
  }
  svg.append(edgeLayer, labelLayer);

  const nodes = {};
  const nodeLayer = s("g", { class: "nodes" });
  for (const name of flow.levels.flat()) {
    const step = steps[name];
    const p = pos[name];
    if (!step || !p) continue;
    const sub = s("text", { class: "sub", x: 12, y: 40 }, stepSubline(step));
    const g = s("g", {
      class: "node s-none", transform: `translate(${p.x},${p.y})`, tabindex: 0, role: "button",
      "data-step": name, "aria-label": `Step ${name}`,
    },
    s("title", {}, name),
    s("rect", { class: "box", width: nodeW, height: NODE_H, rx: 8 }),
    s("text", { class: "name", x: 12, y: 22 }, name),
    sub);
    let right = nodeW - 6;
    if (step.await_before || step.await_after) {
      const where = [step.await_before && "before", step.await_after && "after"].filter(Boolean).join("+");
      const label = `await ${(step.await_before || step.await_after).type}`;
      g.append(pill(label, right, -8, "await"));
      g.querySelector("title").textContent += ` (awaits ${where})`;
      right -= textWidth(label, 10) + 16;
    }
    if (step.entry && flow.triggers && flow.triggers.length) {
      g.append(pill(`${flow.triggers.length} trigger${flow.triggers.length > 1 ? "s" : ""}`, right, -8, "trigger"));
    }
    const activate = () => onSelect && onSelect(name);
    g.addEventListener("click", activate);
    g.addEventListener("keydown", (event) => {
      if (event.key === "Enter" || event.key === " ") { event.preventDefault(); activate(); }
    });
    nodes[name] = { g, sub, step };
    nodeLayer.append(g);
  }
  svg.append(nodeLayer);

  return {
    svg,
    setStatuses(statuses) {
      for (const [name, node] of Object.entries(nodes)) {
        const st = statuses[name];
        const status = st ? st.status : "pending";
        node.g.setAttribute("class", `node s-${status}${node.g.classList.contains("selected") ? " selected" : ""}`);
        node.g.dataset.status = status;
        node.g.setAttribute("aria-label", `Step ${name}: ${status}`);
        const attempts = st && st.attempts > 1 ? ` · ${st.attempts} attempts` : "";
        node.sub.textContent = `${status}${attempts}`;
      }
    },
    select(name) {
      for (const [n, node] of Object.entries(nodes)) node.g.classList.toggle("selected", n === name);
    },
  };
}
