// My account (the playground's key): balance, held, available, multiplier, status, limits and the
// key's own; usage over time as a chart and the ledger with a date filter, paging and CSV.

import { keys, onKeysChanged, user } from "/console/api.js";
import { keyBar } from "/console/keybar.js";
import { UsageView } from "/console/usage.js";
import { busy, errorBox, fill, fmtLimits, fmtModels, fmtTime, h, noticeBox } from "/console/ui.js";

export class Account {
  constructor(root) {
    this.root = root;
    this.summary = h("div", { class: "account-summary", id: "acct-summary", "aria-live": "polite" });
    this.refresh = h("button", { type: "button", id: "acct-refresh", class: "small", text: "Refresh" });
    this.refresh.addEventListener("click", () => busy(this.refresh, () => this.load()));
    this.usage = new UsageView({
      idPrefix: "acct-usage",
      api: { usage: user.usage, usageCsv: user.usageCsv, summary: user.summary },
    });
    this.body = h("div", { class: "account-body" }, this.usage.el);
    fill(
      root,
      h(
        "div",
        { class: "view-head" },
        h("h1", { id: "account-h", tabindex: "-1", text: "My account" }),
        h(
          "div",
          { class: "head-tools" },
          keyBar("user", { id: "acct-key", label: "API key", hint: "The same key as the playground's; kept in this tab only." }),
          this.refresh,
        ),
      ),
      this.summary,
      this.body,
    );
    onKeysChanged(() => {
      if (this.visible) this.load();
    });
  }

  show() {
    this.visible = true;
    this.load();
  }

  hide() {
    this.visible = false;
  }

  async load() {
    if (!keys.user) {
      fill(this.summary, noticeBox("Paste a key to see its account."));
      this.body.hidden = true;
      return;
    }
    this.body.hidden = false;
    const usage = this.usage.reload();
    try {
      const account = await user.account();
      fill(this.summary, accountCards(account));
    } catch (error) {
      fill(this.summary, errorBox(error));
    }
    await usage;
  }
}

function accountCards(a) {
  const card = (name, label, value, extra) =>
    h("div", { class: "figure" }, h("dt", { text: label }), h("dd", { dataset: { field: name }, text: value ?? "—" }), extra || null);
  const key = a.key || {};
  return h(
    "section",
    { class: "card", "aria-labelledby": "acct-cards-h" },
    h("h2", { id: "acct-cards-h", class: "visually-hidden", text: "Balance and limits" }),
    h(
      "div",
      { class: "card-head" },
      h("h2", { class: "account-name", text: a.name || a.id }),
      h("span", { class: `badge status-${a.status}`, dataset: { field: "status" }, text: a.status }),
    ),
    h(
      "dl",
      { class: "figures" },
      card("balance", "Balance", a.balance),
      card("held", "Held", a.held),
      card("available", "Available", a.available),
      card("multiplier", "Price multiplier", a.price_multiplier),
    ),
    h(
      "dl",
      { class: "facts" },
      h("div", {}, h("dt", { text: "Account" }), h("dd", {}, h("code", { text: a.id }))),
      h("div", {}, h("dt", { text: "Models" }), h("dd", { dataset: { field: "models" }, text: fmtModels(a.models) })),
      h("div", {}, h("dt", { text: "Account limits" }), h("dd", { dataset: { field: "limits" }, text: fmtLimits(a.limits) })),
      h("div", {}, h("dt", { text: "This key" }), h("dd", { text: `${key.label || "—"} (${key.prefix || "—"}…)` })),
      h("div", {}, h("dt", { text: "Key models" }), h("dd", { text: fmtModels(key.models) })),
      h("div", {}, h("dt", { text: "Key limits" }), h("dd", { dataset: { field: "key-limits" }, text: fmtLimits(key.limits) })),
      h("div", {}, h("dt", { text: "Key expires" }), h("dd", { text: key.expires_at ? fmtTime(key.expires_at) : "never" })),
    ),
  );
}
