// Usage over time (a chart from the usage summary) and the ledger (a table with a date filter,
// paging by next_cursor and a CSV download), shared by "My account" and the operator's console.

import { ApiError, allCsv, summaryOrDerived } from "/console/api.js";
import { usageChart } from "/console/chart.js";
import {
  addDays,
  busy,
  dataTable,
  daysBetween,
  downloadText,
  errorBox,
  field,
  fill,
  fmtInt,
  fmtMs,
  fmtTime,
  h,
  sumMoney,
  utcDay,
} from "/console/ui.js";

/**
 * api: {usage(params), usageCsv(params), summary(params)}
 * withAccount: the operator's view, with an account filter
 */
export class UsageView {
  constructor({ api, withAccount = false, idPrefix }) {
    this.api = api;
    this.withAccount = withAccount;
    this.cursors = [null]; // cursor of each page seen, for "Previous"
    this.page = 0;
    this.lastSummary = [];
    const p = idPrefix;
    const today = utcDay();
    this.from = h("input", { type: "date", id: `${p}-from`, value: addDays(today, -13), required: true });
    this.to = h("input", { type: "date", id: `${p}-to`, value: today, required: true });
    this.account = withAccount
      ? h("input", { type: "text", id: `${p}-account`, placeholder: "all accounts", autocomplete: "off", spellcheck: "false" })
      : null;
    this.metric = h(
      "select",
      { id: `${p}-metric` },
      h("option", { value: "requests", text: "Requests" }),
      h("option", { value: "tokens", text: "Tokens" }),
      h("option", { value: "cost", text: "Cost" }),
    );
    this.metric.addEventListener("change", () => this.renderChart());
    this.apply = h("button", { type: "submit", class: "primary", text: "Apply" });
    this.csv = h("button", { type: "button", id: `${p}-csv`, text: "Download CSV" });
    this.csv.addEventListener("click", () => this.download());
    this.form = h(
      "form",
      { class: "filters", "aria-label": "Date range" },
      field("From (UTC)", this.from),
      field("To (UTC, included)", this.to),
      this.account ? field("Account", this.account) : null,
      h("div", { class: "field actions" }, this.apply, this.csv),
    );
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.reload();
    });
    this.chartError = h("div", { class: "error-area", "aria-live": "polite" });
    this.chartArea = h("div", { class: "chart-area", id: `${p}-chart` });
    // Redraw at the new width when the window (or the phone) turns.
    new ResizeObserver(() => {
      const w = this.chartArea.clientWidth;
      if (w && this.lastSummary && Math.abs(w - (this.chartWidth || 0)) > 24) this.renderChart();
    }).observe(this.chartArea);
    this.totals = h("p", { class: "totals", id: `${p}-totals` });
    this.tableError = h("div", { class: "error-area", "aria-live": "polite" });
    this.tableArea = h("div", { class: "ledger-area", id: `${p}-ledger` });
    this.prev = h("button", { type: "button", text: "← Newer", disabled: true });
    this.next = h("button", { type: "button", text: "Older →", disabled: true, id: `${p}-next` });
    this.pageLabel = h("span", { class: "page-label", "aria-live": "polite" });
    this.prev.addEventListener("click", () => this.goto(this.page - 1));
    this.next.addEventListener("click", () => this.goto(this.page + 1));
    this.el = h(
      "div",
      { class: "usage-view", id: p },
      h(
        "section",
        { class: "card", "aria-labelledby": `${p}-chart-h` },
        h(
          "div",
          { class: "card-head" },
          h("h3", { id: `${p}-chart-h`, text: "Usage per day" }),
          field("Show", this.metric),
        ),
        this.form,
        this.chartError,
        this.totals,
        this.chartArea,
      ),
      h(
        "section",
        { class: "card", "aria-labelledby": `${p}-ledger-h` },
        h("h3", { id: `${p}-ledger-h`, text: "Ledger" }),
        this.tableError,
        this.tableArea,
        h("div", { class: "pager" }, this.prev, this.pageLabel, this.next),
      ),
    );
  }

  params() {
    const from = this.from.value || addDays(utcDay(), -13);
    const to = this.to.value || utcDay();
    const params = { from, to: addDays(to, 1) }; // the API's `to` is exclusive
    if (this.account && this.account.value.trim()) params.account = this.account.value.trim();
    return params;
  }

  async reload() {
    this.cursors = [null];
    this.page = 0;
    await busy(this.apply, () => Promise.all([this.loadSummary(), this.loadPage()]));
  }

  async loadSummary() {
    fill(this.chartError);
    try {
      const { data, derived } = await summaryOrDerived(this.api.summary, this.api.usage, this.params());
      this.lastSummary = data;
      this.derived = derived;
      this.renderChart();
    } catch (error) {
      fill(this.chartArea);
      fill(this.totals);
      fill(this.chartError, errorBox(error));
    }
  }

  renderChart() {
    const data = this.lastSummary || [];
    const { from, to } = this.params();
    const days = daysBetween(from, addDays(to, -1));
    this.chartWidth = this.chartArea.clientWidth || 640;
    fill(this.chartArea, usageChart(data, { metric: this.metric.value, days, width: this.chartWidth }));
    const requests = data.reduce((a, r) => a + (Number(r.requests) || 0), 0);
    const tokens = data.reduce((a, r) => a + (Number(r.prompt_tokens) || 0) + (Number(r.completion_tokens) || 0), 0);
    fill(
      this.totals,
      h("span", { dataset: { total: "requests" }, text: `${fmtInt(requests)} requests` }),
      " · ",
      h("span", { dataset: { total: "tokens" }, text: `${fmtInt(tokens)} tokens` }),
      " · ",
      h("span", { dataset: { total: "cost" }, text: `cost ${sumMoney(data.map((r) => r.cost || "0"))}` }),
      this.derived ? h("small", { class: "hint", text: " (summed from the ledger: this gateway has no /usage/summary)" }) : null,
    );
  }

  async goto(page) {
    if (page < 0 || page >= this.cursors.length) return;
    this.page = page;
    await this.loadPage();
  }

  async loadPage() {
    fill(this.tableError);
    this.prev.disabled = true;
    this.next.disabled = true;
    try {
      const answer = await this.api.usage({ ...this.params(), limit: 25, cursor: this.cursors[this.page] });
      const rows = answer.data || [];
      if (answer.next_cursor) this.cursors[this.page + 1] = answer.next_cursor;
      else this.cursors.length = this.page + 1;
      this.prev.disabled = this.page === 0;
      this.next.disabled = !answer.next_cursor;
      this.pageLabel.textContent = `Page ${this.page + 1}`;
      fill(this.tableArea, ledgerTable(rows, { withAccount: this.withAccount }));
    } catch (error) {
      fill(this.tableArea);
      fill(this.tableError, errorBox(error));
    }
  }

  async download() {
    fill(this.tableError);
    await busy(this.csv, async () => {
      try {
        const text = await allCsv(this.api.usageCsv, this.params());
        const { from, to } = this.params();
        downloadText(text, `switchyard-usage-${from}-to-${addDays(to, -1)}.csv`);
      } catch (error) {
        fill(this.tableError, errorBox(error instanceof ApiError ? error : new ApiError(String(error))));
      }
    });
  }
}

export function ledgerTable(rows, { withAccount = false } = {}) {
  const columns = [
    { label: "Started", value: (r) => fmtTime(r.started_at) },
    withAccount ? { label: "Account", value: (r) => r.account_id } : null,
    { label: "Id", value: (r) => h("code", { text: r.id }), class: "mono" },
    { label: "Model", value: (r) => r.model },
    { label: "Status", value: (r) => h("span", { class: `badge status-${r.status}`, text: r.status }) },
    { label: "End", value: (r) => r.end_reason },
    {
      label: "Tokens",
      value: (r) => (r.usage ? `${fmtInt(r.usage.prompt_tokens)} + ${fmtInt(r.usage.completion_tokens)}` : "—"),
    },
    { label: "Cost", value: (r) => r.cost, class: "num" },
    { label: "First token", value: (r) => fmtMs(r.timings_ms && r.timings_ms.first_token), class: "num" },
    { label: "Generation", value: (r) => fmtMs(r.timings_ms && r.timings_ms.generation), class: "num" },
    { label: "User", value: (r) => r.user },
    { label: "API", value: (r) => r.api },
  ].filter(Boolean);
  return dataTable(columns, rows, { caption: "Ledger rows, newest first", empty: "No requests in this range." });
}
