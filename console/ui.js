// DOM and formatting helpers shared by every page. Nothing here touches inline styles or HTML strings:
// elements are built with createElement and text is always set as text, never parsed as HTML, so
// whatever the API or a model answers cannot inject markup.

/** h("button", {class: "primary", type: "button", onclick: fn}, "Send") */
export function h(tag, attrs = {}, ...children) {
  const svg = tag.startsWith("svg:");
  const el = svg
    ? document.createElementNS("http://www.w3.org/2000/svg", tag.slice(4))
    : document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") {
      el.addEventListener(name.slice(2), value);
    } else if (name === "class") {
      el.setAttribute("class", Array.isArray(value) ? value.filter(Boolean).join(" ") : value);
    } else if (name === "dataset") {
      Object.assign(el.dataset, value);
    } else if (name === "text") {
      el.textContent = value;
    } else if (name === "style") {
      throw new Error("inline styles are not allowed by the console's CSP: use a class");
    } else if (!svg && (name === "value" || name === "checked" || name === "disabled" || name === "hidden")) {
      el[name] = value;
    } else {
      el.setAttribute(name, value === true ? "" : String(value));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Replaces an element's children. */
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

export const $ = (selector, root = document) => root.querySelector(selector);
export const $$ = (selector, root = document) => Array.from(root.querySelectorAll(selector));

/** An error box with the API's own message (and its code, type and HTTP status in small print). */
export function errorBox(error) {
  const details = [];
  if (error && error.status) details.push(`HTTP ${error.status}`);
  if (error && error.code) details.push(error.code);
  if (error && error.param) details.push(`param: ${error.param}`);
  return h(
    "div",
    { class: "alert error", role: "alert" },
    h("span", { class: "alert-message", text: (error && error.message) || String(error) }),
    details.length ? h("small", { class: "alert-details", text: details.join(" · ") }) : null,
  );
}

export function noticeBox(text, kind = "info") {
  return h("div", { class: `alert ${kind}`, role: "status", text });
}

/** Shows an error (or clears the area when error is null). */
export function showError(area, error) {
  if (!area) return;
  if (error) fill(area, errorBox(error));
  else area.replaceChildren();
}

let toastTimer = null;
/** A short message at the bottom of the screen, read out by screen readers. */
export function toast(text) {
  const el = document.getElementById("toast");
  if (!el) return;
  el.textContent = text;
  el.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => {
    el.hidden = true;
  }, 2600);
}

/** Copies text, falling back to a hidden textarea where the Clipboard API is unavailable (plain http). */
export async function copyText(text) {
  try {
    if (navigator.clipboard && window.isSecureContext) {
      await navigator.clipboard.writeText(text);
      return true;
    }
  } catch {
    // fall through to the textarea
  }
  const area = h("textarea", { class: "offscreen", readonly: true, "aria-hidden": "true" });
  area.value = text;
  document.body.append(area);
  area.select();
  let ok = false;
  try {
    ok = document.execCommand("copy");
  } catch {
    ok = false;
  }
  area.remove();
  return ok;
}

/** A button that copies what getText() returns. */
export function copyButton(getText, label = "Copy") {
  const button = h("button", { type: "button", class: "small", text: label });
  button.addEventListener("click", async () => {
    const ok = await copyText(typeof getText === "function" ? getText() : getText);
    toast(ok ? "Copied to the clipboard" : "Could not copy: select the text and copy it by hand");
  });
  return button;
}

/** A random UUID (v4): crypto.randomUUID where the page is a secure context, else from getRandomValues. */
export function uuid() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const hex = Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

// ---- formatting ----

/** "2026-12-01 13:43:39" (local time) of unix seconds (fractions allowed). */
export function fmtTime(unix) {
  if (unix === null || unix === undefined || unix === "") return "—";
  const d = new Date(Number(unix) * 1000);
  if (Number.isNaN(d.getTime())) return String(unix);
  const p = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

export function fmtMs(ms) {
  if (ms === null || ms === undefined || ms === "") return "—";
  const n = Number(ms);
  if (!Number.isFinite(n)) return String(ms);
  return n >= 10000 ? `${(n / 1000).toFixed(1)} s` : `${Math.round(n)} ms`;
}

export function fmtInt(n) {
  if (n === null || n === undefined || n === "") return "—";
  const v = Number(n);
  return Number.isFinite(v) ? v.toLocaleString("en-US") : String(n);
}

/** A limits object as "600 req/min · 200,000 tok/min · 4 at once", or "none". */
export function fmtLimits(limits) {
  if (!limits) return "none";
  const parts = [];
  const show = (v, unit) => {
    if (v === null || v === undefined) return;
    parts.push(v === "unlimited" ? `unlimited ${unit}` : `${fmtInt(v)} ${unit}`);
  };
  show(limits.requests_per_minute, "req/min");
  show(limits.tokens_per_minute, "tok/min");
  show(limits.concurrent, "at once");
  return parts.length ? parts.join(" · ") : "none";
}

export function fmtModels(models) {
  if (models === null || models === undefined) return "all";
  if (Array.isArray(models)) return models.length ? models.join(", ") : "none";
  return String(models);
}

/** A catalog price (the `pricing` object of /v1/models) in words. */
export function fmtPrice(pricing) {
  if (!pricing || typeof pricing !== "object") return "—";
  const table = (t) =>
    t && typeof t === "object"
      ? Object.entries(t)
          .map(([k, v]) => `${k}: ${v}`)
          .join(", ")
      : "";
  switch (pricing.kind) {
    case "free":
      return "free";
    case "tokens":
      return `${pricing.input_per_1k} in / ${pricing.output_per_1k} out per 1K tokens`;
    case "per_second":
      return `${pricing.per_second} per second${pricing.max_seconds ? ` (at most ${pricing.max_seconds} s billed)` : ""}`;
    case "per_request":
      return `${pricing.per_request} per request`;
    case "image":
      return `per image: ${table(pricing.per_image)}`;
    case "characters":
      return `${pricing.per_1m_characters} per 1M characters`;
    case "audio_second":
      return `${pricing.per_audio_second} per second of audio`;
    case "action":
      return `per task: ${table(pricing.per_action)}`;
    default: {
      const rest = Object.entries(pricing)
        .filter(([k]) => k !== "kind")
        .map(([k, v]) => `${k}: ${typeof v === "object" ? JSON.stringify(v) : v}`)
        .join(", ");
      return `${pricing.kind || "price"}${rest ? ` (${rest})` : ""}`;
    }
  }
}

// ---- exact decimal sums (money is a decimal string; never add it as floats) ----

const SCALE = 9;

/** "1.5" → 1500000000n (nano-units). */
export function toNanos(text) {
  const s = String(text ?? "0").trim();
  const m = /^(-?)(\d*)(?:\.(\d*))?$/.exec(s);
  if (!m) return 0n;
  const [, sign, whole, frac = ""] = m;
  const value = BigInt(whole || "0") * 10n ** BigInt(SCALE) + BigInt((frac + "0".repeat(SCALE)).slice(0, SCALE) || "0");
  return sign ? -value : value;
}

/** 1500000000n → "1.50" (at least two decimals, no trailing zeros beyond). */
export function fromNanos(value) {
  const negative = value < 0n;
  const abs = negative ? -value : value;
  const unit = 10n ** BigInt(SCALE);
  let frac = (abs % unit).toString().padStart(SCALE, "0").replace(/0+$/, "");
  if (frac.length < 2) frac = frac.padEnd(2, "0");
  return `${negative ? "-" : ""}${abs / unit}.${frac}`;
}

export function sumMoney(values) {
  return fromNanos(values.reduce((acc, v) => acc + toNanos(v), 0n));
}

// ---- dates (the ledger's days are UTC) ----

export function utcDay(date = new Date()) {
  return date.toISOString().slice(0, 10);
}

export function addDays(day, n) {
  const d = new Date(`${day}T00:00:00Z`);
  d.setUTCDate(d.getUTCDate() + n);
  return utcDay(d);
}

/** Every day from `from` to `to`, both included (YYYY-MM-DD, UTC). */
export function daysBetween(from, to) {
  const out = [];
  for (let d = from; d <= to && out.length < 1000; d = addDays(d, 1)) out.push(d);
  return out;
}

/**
 * A table that turns into labelled cards on narrow screens (each cell carries its column's name).
 * columns: [{label, value: row => text|Node, class?}]
 */
export function dataTable(columns, rows, { caption, empty = "Nothing yet." } = {}) {
  if (!rows.length) return h("p", { class: "empty", text: empty });
  return h(
    "div",
    { class: "table-wrap" },
    h(
      "table",
      { class: "data" },
      caption ? h("caption", { class: "visually-hidden", text: caption }) : null,
      h("thead", {}, h("tr", {}, columns.map((c) => h("th", { scope: "col", text: c.label })))),
      h(
        "tbody",
        {},
        rows.map((row) =>
          h(
            "tr",
            {},
            columns.map((c) => {
              const v = c.value(row);
              return h("td", { "data-label": c.label, class: c.class }, v === null || v === undefined || v === "" ? "—" : v);
            }),
          ),
        ),
      ),
    ),
  );
}

/** A labelled form field. */
export function field(label, input, hint) {
  const id = input.id || `f-${Math.random().toString(36).slice(2, 10)}`;
  input.id = id;
  return h(
    "div",
    { class: "field" },
    h("label", { for: id, text: label }),
    input,
    hint ? h("small", { class: "hint", text: hint }) : null,
  );
}

/** "a, b ,c" → ["a","b","c"]; blank → null (meaning: all). */
export function parseList(text) {
  const items = String(text || "")
    .split(/[,\s]+/)
    .map((s) => s.trim())
    .filter(Boolean);
  return items.length ? items : null;
}

/** Limits from three inputs' values; all blank → null. Numbers stay numbers, "unlimited" stays. */
export function parseLimits(rpm, tpm, concurrent) {
  const one = (v) => {
    const s = String(v ?? "").trim();
    if (!s) return null;
    if (s === "unlimited") return s;
    return /^-?\d+$/.test(s) ? Number(s) : s;
  };
  const limits = { requests_per_minute: one(rpm), tokens_per_minute: one(tpm), concurrent: one(concurrent) };
  return Object.values(limits).every((v) => v === null) ? null : limits;
}

/** Starts a Blob download of text (CSV) without putting anything in a URL but an object URL. */
export function downloadText(text, filename, type = "text/csv") {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const a = h("a", { href: url, download: filename, class: "offscreen" });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

/** Sets a button busy (disabled, aria-busy) while fn runs. */
export async function busy(button, fn) {
  if (button) {
    button.disabled = true;
    button.setAttribute("aria-busy", "true");
  }
  try {
    return await fn();
  } finally {
    if (button) {
      button.disabled = false;
      button.removeAttribute("aria-busy");
    }
  }
}

/** Arrow keys, Home and End move between the tabs of a tablist. */
export function tabKeys(event, tabs) {
  const i = tabs.indexOf(event.currentTarget);
  let j = null;
  if (event.key === "ArrowRight") j = (i + 1) % tabs.length;
  else if (event.key === "ArrowLeft") j = (i - 1 + tabs.length) % tabs.length;
  else if (event.key === "Home") j = 0;
  else if (event.key === "End") j = tabs.length - 1;
  if (j === null) return;
  event.preventDefault();
  tabs[j].focus();
  tabs[j].click();
}
