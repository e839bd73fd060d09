// A form generated from a JSON schema (as pydantic writes them): strings, numbers, integers,
// booleans, enums, nested objects and optional (nullable) values get their own controls;
// arrays and anything else are edited as JSON. read() checks the values in the browser first
// (required fields, types, enums, bounds, lengths, patterns) so that a person sees what is
// wrong before anything is sent; showErrors() also places the server's 422 field errors.
import { h, json } from "./util.js";

const SIMPLE = new Set(["string", "number", "integer", "boolean"]);

/** The schema with its $ref / single allOf resolved against the root's $defs. */
function deref(node, root, seen = new Set()) {
  if (!node || typeof node !== "object") return {};
  let out = node;
  if (typeof out.$ref === "string" && !seen.has(out.$ref)) {
    seen.add(out.$ref);
    const target = out.$ref.replace(/^#\//, "").split("/").reduce((at, part) => (at ? at[part.replace(/~1/g, "/").replace(/~0/g, "~")] : undefined), root);
    const { $ref: _, ...rest } = out;
    out = { ...deref(target, root, seen), ...rest };
  }
  if (Array.isArray(out.allOf) && out.allOf.length === 1) {
    const { allOf, ...rest } = out;
    out = { ...deref(allOf[0], root, seen), ...rest };
  }
  return out;
}

/** What control a schema node gets, and whether it may be null. */
function describe(raw, root) {
  let node = deref(raw, root);
  let nullable = false;
  const options = node.anyOf || node.oneOf;
  if (Array.isArray(options)) {
    const all = options.map((o) => deref(o, root));
    const rest = all.filter((o) => o.type !== "null");
    nullable = rest.length < all.length;
    const { anyOf: _a, oneOf: _o, ...outer } = node;
    node = rest.length === 1 ? { ...rest[0], ...outer } : { ...outer, _json: true };
  }
  if (Array.isArray(node.type)) {
    const types = node.type.filter((t) => t !== "null");
    nullable = nullable || types.length < node.type.length;
    node = { ...node, type: types.length === 1 ? types[0] : undefined };
  }
  let kind = "json";
  if (node._json) kind = "json";
  else if (Array.isArray(node.enum) && node.enum.length) kind = "enum";
  else if ("const" in node) kind = "const";
  else if (SIMPLE.has(node.type)) kind = node.type;
  else if (node.type === "object" && node.properties && Object.keys(node.properties).length) kind = "object";
  else if (!node.type && node.properties) kind = "object";
  return { node, kind, nullable };
}

const label = (key, node) => node.title || key || "Payload";

/** Human words for the bounds of a number or the length of a string. */
function constraints(node, kind) {
  const out = [];
  if (kind === "number" || kind === "integer") {
    if (node.minimum !== undefined) out.push(`≥ ${node.minimum}`);
    if (node.exclusiveMinimum !== undefined) out.push(`> ${node.exclusiveMinimum}`);
    if (node.maximum !== undefined) out.push(`≤ ${node.maximum}`);
    if (node.exclusiveMaximum !== undefined) out.push(`< ${node.exclusiveMaximum}`);
    if (node.multipleOf !== undefined) out.push(`a multiple of ${node.multipleOf}`);
    if (kind === "integer") out.unshift("a whole number");
  } else if (kind === "string") {
    if (node.minLength !== undefined) out.push(`at least ${node.minLength} characters`);
    if (node.maxLength !== undefined) out.push(`at most ${node.maxLength} characters`);
    if (node.format) out.push(node.format);
  } else if (kind === "json") {
    out.push(node.type === "array" ? "a JSON array" : node.type === "object" ? "a JSON object" : "JSON");
  }
  return out;
}

/** Errors of `value` against simple keywords of `node` (the server checks everything again). */
function check(value, node, kind) {
  const errs = [];
  if (kind === "number" || kind === "integer") {
    if (kind === "integer" && !Number.isInteger(value)) errs.push("must be a whole number");
    if (node.minimum !== undefined && value < node.minimum) errs.push(`must be at least ${node.minimum}`);
    if (node.exclusiveMinimum !== undefined && value <= node.exclusiveMinimum) errs.push(`must be greater than ${node.exclusiveMinimum}`);
    if (node.maximum !== undefined && value > node.maximum) errs.push(`must be at most ${node.maximum}`);
    if (node.exclusiveMaximum !== undefined && value >= node.exclusiveMaximum) errs.push(`must be less than ${node.exclusiveMaximum}`);
    if (node.multipleOf && Math.abs(value / node.multipleOf - Math.round(value / node.multipleOf)) > 1e-9) errs.push(`must be a multiple of ${node.multipleOf}`);
  } else if (kind === "string") {
    if (node.minLength !== undefined && value.length < node.minLength) errs.push(`must have at least ${node.minLength} characters`);
    if (node.maxLength !== undefined && value.length > node.maxLength) errs.push(`must have at most ${node.maxLength} characters`);
    if (node.pattern) {
      let re = null;
      try { re = new RegExp(node.pattern, "u"); } catch { re = null; }
      if (re && !re.test(value)) errs.push(`must match ${node.pattern}`);
    }
  } else if (kind === "json") {
    const type = Array.isArray(value) ? "array" : value === null ? "null" : typeof value;
    const want = node.type;
    if (want === "array" && type !== "array") errs.push("must be a JSON array, like [1, 2]");
    else if (want === "object" && (type !== "object")) errs.push("must be a JSON object, like {\"a\": 1}");
    if (want === "array" && type === "array") {
      if (node.minItems !== undefined && value.length < node.minItems) errs.push(`needs at least ${node.minItems} items`);
      if (node.maxItems !== undefined && value.length > node.maxItems) errs.push(`takes at most ${node.maxItems} items`);
      const item = node.items && typeof node.items === "object" ? node.items : null;
      const itemType = item && item.type;
      if (SIMPLE.has(itemType)) {
        const ok = (v) => (itemType === "integer" ? Number.isInteger(v) : itemType === "number" ? typeof v === "number" : typeof v === itemType);
        const bad = value.findIndex((v) => !ok(v));
        if (bad >= 0) errs.push(`item ${bad + 1} must be ${itemType === "integer" ? "a whole number" : `a ${itemType}`}`);
      }
    }
  }
  return errs;
}

/**
 * Build the form's controls for `schema` into a container. Returns
 * `{ element, read(), showErrors(errors, message), clear() }`; read() gives `{ value, errors }`
 * where errors are `{loc, msg}` like the API's. Control ids are `${prefix}-${path}`.
 */
export function schemaForm(schema, { prefix = "f" } = {}) {
  const root = schema || {};
  const fields = new Map(); // path key -> {control, error, wrap}
  const summary = h("div.form-errors", { role: "alert", "aria-live": "assertive" });

  const idOf = (path) => `${prefix}-${path.length ? path.join("-").replace(/[^A-Za-z0-9_-]/g, "_") : "value"}`;

  function fieldShell(path, title, node, kind, required, control, { inline = false } = {}) {
    const id = control.id;
    const hints = [node.description, ...constraints(node, kind)].filter(Boolean).join("; ");
    const hint = hints ? h("div.hint", { id: `${id}-hint` }, hints) : null;
    const error = h("div.field-error", { id: `${id}-error` });
    control.setAttribute("aria-describedby", [hint ? `${id}-hint` : null, `${id}-error`].filter(Boolean).join(" "));
    if (required) control.setAttribute("aria-required", "true");
    const text = [title, required ? h("span.req", { "aria-hidden": "true" }, " *") : null];
    const lab = h("label", { for: id }, text);
    const wrap = inline
      ? h("div.sf-field.sf-check", { "data-field": path.join(".") }, h("div.sf-row", control, lab), hint, error)
      : h("div.sf-field", { "data-field": path.join(".") }, lab, control, hint, error);
    fields.set(JSON.stringify(path), { control, error, wrap });
    return wrap;
  }

  // Each builder returns [element, reader]; a reader returns {present, value} and pushes errors.
  function build(raw, path, key, required) {
    const { node, kind, nullable } = describe(raw, root);
    const title = label(key, node);
    const id = idOf(path);
    const has = (v) => v !== undefined && v !== null;
    if (kind === "object") {
      const props = node.properties || {};
      const req = new Set(node.required || []);
      const parts = Object.entries(props).map(([k, sub]) => [k, build(sub, [...path, k], k, req.has(k))]);
      const body = parts.map(([, [el]]) => el);
      const element = path.length
        ? h("fieldset.sf-group", { "data-field": path.join(".") },
          h("legend", title, required ? h("span.req", { "aria-hidden": "true" }, " *") : null, required ? h("span.sr-only", " (required)") : null),
          node.description ? h("div.hint", node.description) : null, body)
        : h("div.sf-root", root.description ? h("p.hint", root.description) : null, body);
      return [element, (errors) => {
        const value = {};
        const inner = [];
        let any = false;
        for (const [k, [, read]] of parts) {
          const r = read(inner);
          if (r.present) { value[k] = r.value; if (!r.isDefault) any = true; }
        }
        // an optional nested object left empty is left out (with its inner errors)
        if (path.length && !required && !any && !inner.some((e) => e.typed)) return { present: false };
        errors.push(...inner);
        return { present: true, value };
      }];
    }
    if (kind === "boolean") {
      const control = h("input", { type: "checkbox", id, checked: node.default === true });
      return [fieldShell(path, title, node, kind, false, control, { inline: true }),
        () => ({ present: true, value: control.checked, isDefault: control.checked === (node.default === true) && !required })];
    }
    if (kind === "enum" || kind === "const") {
      const values = kind === "enum" ? node.enum : [node.const];
      const control = h("select", { id });
      // with a default there is nothing to leave blank; a lone required value is chosen
      const blank = !has(node.default) && !(required && values.length === 1);
      if (blank) control.append(h("option", { value: "" }, required ? "Choose…" : "—"));
      values.forEach((v, i) => control.append(h("option", { value: String(i), selected: has(node.default) && node.default === v }, v === null ? "null" : String(v))));
      return [fieldShell(path, title, node, kind, required, control), (errors) => {
        if (control.value === "") {
          if (required) errors.push({ loc: path, msg: "Choose one of the options.", typed: false });
          return { present: false };
        }
        const value = values[Number(control.value)];
        return { present: true, value, isDefault: value === node.default };
      }];
    }
    if (kind === "string" || kind === "number" || kind === "integer") {
      const numeric = kind !== "string";
      const attrs = { id, name: path.join("."), autocomplete: "off" };
      if (numeric) Object.assign(attrs, { type: "number", step: kind === "integer" ? "1" : "any", inputmode: kind === "integer" ? "numeric" : "decimal" });
      else Object.assign(attrs, { type: node.format === "email" ? "email" : node.format === "uri" ? "url" : "text", maxlength: node.maxLength, spellcheck: "false" });
      if (has(node.default)) attrs.value = String(node.default);
      const control = h("input", attrs);
      return [fieldShell(path, title, node, kind, required, control), (errors) => {
        if (numeric && control.validity && control.validity.badInput) {
          errors.push({ loc: path, msg: `must be ${kind === "integer" ? "a whole number" : "a number"}`, typed: true });
          return { present: false };
        }
        const text = control.value;
        if (text.trim() === "") {
          if (required) errors.push({ loc: path, msg: "This field is required.", typed: false });
          return { present: false };
        }
        const value = numeric ? Number(text) : text;
        if (numeric && !Number.isFinite(value)) {
          errors.push({ loc: path, msg: "must be a number", typed: true });
          return { present: false };
        }
        for (const msg of check(value, node, kind)) errors.push({ loc: path, msg, typed: true });
        return { present: true, value, isDefault: has(node.default) && value === node.default };
      }];
    }
    // arrays, free-form objects, unions: JSON text
    const placeholder = node.type === "array" ? '["…"]' : node.type === "object" || !path.length ? '{"key": "value"}' : "JSON";
    const control = h("textarea", { id, rows: 3, spellcheck: "false", placeholder, class: "sf-json" });
    if (has(node.default) && !(Array.isArray(node.default) && !node.default.length)) control.value = json(node.default);
    return [fieldShell(path, title, node, "json", required, control), (errors) => {
      const text = control.value.trim();
      if (!text) {
        if (required && !nullable) errors.push({ loc: path, msg: "This field is required.", typed: false });
        return { present: false };
      }
      let value;
      try { value = JSON.parse(text); } catch (err) {
        errors.push({ loc: path, msg: `is not valid JSON: ${err.message}`, typed: true });
        return { present: false };
      }
      if (!(value === null && nullable)) for (const msg of check(value, node, "json")) errors.push({ loc: path, msg, typed: true });
      return { present: true, value };
    }];
  }

  // without a schema any JSON goes, and an empty payload is null
  const [body, readRoot] = build(root, [], "", Object.keys(root).length > 0);
  const element = h("div.schema-form", summary, body);

  function clear() {
    summary.replaceChildren();
    for (const { control, error } of fields.values()) {
      control.removeAttribute("aria-invalid");
      error.textContent = "";
    }
  }

  /** Mark the fields of `errors` ({loc, msg}); list the rest, and a count, in the summary. */
  function showErrors(errors, message = null) {
    clear();
    const loose = [];
    let first = null;
    for (const e of errors) {
      const loc = (e.loc || []).filter((p) => p !== "body");
      let target = null;
      for (let n = loc.length; n >= 0 && !target; n -= 1) target = fields.get(JSON.stringify(loc.slice(0, n).map(String)));
      const exact = target && fields.get(JSON.stringify(loc.map(String))) === target;
      if (target) {
        target.control.setAttribute("aria-invalid", "true");
        const text = exact ? e.msg : `${loc.join(".")}: ${e.msg}`;
        target.error.textContent = target.error.textContent ? `${target.error.textContent} ${text}` : text;
        first ||= target.control;
      } else loose.push(`${loc.length ? `${loc.join(".")}: ` : ""}${e.msg}`);
    }
    const n = errors.length;
    summary.append(h("p.error", message || `Please correct ${n === 1 ? "one field" : `${n} fields`}; nothing was sent.`));
    if (loose.length) summary.append(h("ul.error", loose.map((t) => h("li", t))));
    if (first) first.focus();
  }

  function read() {
    const errors = [];
    const r = readRoot(errors);
    return { value: r.present ? r.value : undefined, errors: errors.map(({ loc, msg }) => ({ loc: loc.map(String), msg })) };
  }

  return { element, read, showErrors, clear };
}
