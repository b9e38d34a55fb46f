// A small stacked bar chart in SVG: one bar per day, one colour per model. Colours come from CSS
// classes (.series-0 … .series-7, see console.css) so the chart follows the light or dark theme; no
// inline style is used. The chart scales to its container (viewBox), and the same numbers are
// available as a table for screen readers and for reading exact values.

import { h, fmtInt } from "/console/ui.js";

const SERIES = 8; // distinct colours; further models share the last one ("others")

/**
 * rows: [{day, model, requests, prompt_tokens, completion_tokens, cost}]
 * metric: "requests" | "tokens" | "cost"
 * days: every day of the range, in order (YYYY-MM-DD)
 */
export function usageChart(rows, { metric = "requests", days, title = "Usage per day", width = 640 } = {}) {
  const value = (r) =>
    metric === "cost"
      ? Number(r.cost) || 0
      : metric === "tokens"
        ? (Number(r.prompt_tokens) || 0) + (Number(r.completion_tokens) || 0)
        : Number(r.requests) || 0;
  // Models by their total, largest first; those beyond the palette are summed as "others".
  const totals = new Map();
  for (const r of rows) totals.set(r.model, (totals.get(r.model) || 0) + value(r));
  let models = Array.from(totals.keys()).sort((a, b) => totals.get(b) - totals.get(a) || a.localeCompare(b));
  const others = models.length > SERIES ? models.slice(SERIES - 1) : [];
  if (others.length) models = [...models.slice(0, SERIES - 1), "others"];
  const seriesOf = (model) => (others.includes(model) ? "others" : model);

  const byDay = new Map(days.map((d) => [d, new Map()]));
  for (const r of rows) {
    const perDay = byDay.get(r.day) || byDay.set(r.day, new Map()).get(r.day);
    const s = seriesOf(r.model);
    perDay.set(s, (perDay.get(s) || 0) + value(r));
  }
  const allDays = Array.from(byDay.keys()).sort();
  const dayTotal = (d) => Array.from(byDay.get(d).values()).reduce((a, b) => a + b, 0);
  const max = Math.max(0, ...allDays.map(dayTotal));
  const format = (v) => (metric === "cost" ? trimCost(v) : fmtInt(Math.round(v)));

  // Geometry, in viewBox units.
  // Drawn at the container's own width (one unit a CSS pixel), so labels keep their size.
  const W = Math.max(280, Math.round(width));
  const H = W < 500 ? 200 : 240;
  const left = 56;
  const right = 8;
  const top = 12;
  const bottom = 28;
  const plotW = W - left - right;
  const plotH = H - top - bottom;
  const n = Math.max(allDays.length, 1);
  const slot = plotW / n;
  const barW = Math.max(2, Math.min(36, slot * 0.7));
  const scale = niceMax(max);

  const svg = h(
    "svg:svg",
    {
      viewBox: `0 0 ${W} ${H}`,
      class: "chart",
      role: "img",
      "aria-label": `${title}: ${metricLabel(metric)} per day${models.length ? `, by model (${models.join(", ")})` : ""}`,
      preserveAspectRatio: "xMidYMid meet",
    },
    h("svg:title", { text: `${title} (${metricLabel(metric)})` }),
  );
  // Grid lines and y labels: 0, half, max.
  for (const f of [0, 0.5, 1]) {
    const y = top + plotH - f * plotH;
    svg.append(h("svg:line", { x1: left, x2: W - right, y1: y, y2: y, class: "chart-grid" }));
    svg.append(
      h("svg:text", { x: left - 6, y: y + 4, class: "chart-label", "text-anchor": "end", text: format(scale * f) }),
    );
  }
  const labelEvery = Math.ceil(n / Math.max(2, Math.floor(plotW / 56)));
  allDays.forEach((d, i) => {
    const x = left + i * slot + (slot - barW) / 2;
    let y = top + plotH;
    models.forEach((model, si) => {
      const v = byDay.get(d).get(model) || 0;
      if (!v || !scale) return;
      const hgt = (v / scale) * plotH;
      y -= hgt;
      svg.append(
        h(
          "svg:rect",
          { x, y, width: barW, height: Math.max(hgt, 0.5), class: `series-${si}` },
          h("svg:title", { text: `${d} · ${model}: ${format(v)}` }),
        ),
      );
    });
    if (i % labelEvery === 0) {
      svg.append(
        h("svg:text", {
          x: x + barW / 2,
          y: H - 8,
          class: "chart-label",
          "text-anchor": "middle",
          text: d.slice(5),
        }),
      );
    }
  });

  const legend = h(
    "ul",
    { class: "legend", "aria-label": "Models" },
    models.map((m, i) =>
      h("li", {}, h("span", { class: `swatch series-${i}`, "aria-hidden": "true" }), `${m} (${format(totals.get(m) ?? othersTotal(others, totals))})`),
    ),
  );
  const table = h(
    "details",
    { class: "chart-table" },
    h("summary", { text: "Show the numbers" }),
    h(
      "div",
      { class: "table-wrap" },
      h(
        "table",
        { class: "data compact" },
        h("thead", {}, h("tr", {}, h("th", { scope: "col", text: "Day" }), models.map((m) => h("th", { scope: "col", text: m })), h("th", { scope: "col", text: "Total" }))),
        h(
          "tbody",
          {},
          allDays.map((d) =>
            h(
              "tr",
              {},
              h("th", { scope: "row", text: d }),
              models.map((m) => h("td", { "data-label": m, text: format(byDay.get(d).get(m) || 0) })),
              h("td", { "data-label": "Total", text: format(dayTotal(d)) }),
            ),
          ),
        ),
      ),
    ),
  );
  return h(
    "figure",
    { class: "chart-figure" },
    rows.length ? svg : h("p", { class: "empty", text: "No requests in this range." }),
    rows.length ? legend : null,
    rows.length ? table : null,
  );
}

function othersTotal(others, totals) {
  return others.reduce((a, m) => a + (totals.get(m) || 0), 0);
}

function metricLabel(metric) {
  return metric === "cost" ? "cost" : metric === "tokens" ? "tokens" : "requests";
}

function niceMax(max) {
  if (max <= 0) return 0;
  const exp = Math.pow(10, Math.floor(Math.log10(max)));
  for (const m of [1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10]) if (m * exp >= max) return m * exp;
  return 10 * exp;
}

function trimCost(v) {
  if (!v) return "0";
  const digits = v >= 1 ? 2 : v >= 0.01 ? 4 : 6;
  return v.toFixed(digits).replace(/(\.\d*?)0+$/, "$1").replace(/\.$/, "");
}
