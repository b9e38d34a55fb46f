// The operator's console (the admin key, kept in sessionStorage and sent only as a bearer header):
// accounts (create, top up with a fresh idempotency key per click, suspend or activate, multiplier,
// limits, allowed models), their keys (create — the secret shown once —, list, revoke), the model
// catalog with prices, usage across accounts, and managed engines with start and stop.

import { ApiError, admin, keys, onKeysChanged } from "/console/api.js";
import { keyBar } from "/console/keybar.js";
import { UsageView } from "/console/usage.js";
import {
  busy,
  copyButton,
  dataTable,
  errorBox,
  field,
  fill,
  fmtInt,
  fmtLimits,
  fmtModels,
  fmtMs,
  fmtPrice,
  fmtTime,
  h,
  noticeBox,
  parseLimits,
  parseList,
  tabKeys,
  toast,
  uuid,
} from "/console/ui.js";

const SECTIONS = [
  ["accounts", "Accounts"],
  ["models", "Models"],
  ["usage", "Usage"],
  ["engines", "Engines"],
];

export class Admin {
  constructor(root) {
    this.root = root;
    this.section = "accounts";
    this.accounts = [];
    this.selected = null;
    this.tabButtons = SECTIONS.map(([id, label]) => {
      const b = h("button", {
        type: "button",
        role: "tab",
        id: `adm-tab-${id}`,
        "aria-controls": `adm-panel-${id}`,
        "aria-selected": id === this.section ? "true" : "false",
        tabindex: id === this.section ? "0" : "-1",
        text: label,
      });
      b.addEventListener("click", () => this.select(id));
      b.addEventListener("keydown", (e) => tabKeys(e, this.tabButtons));
      return b;
    });
    this.panels = Object.fromEntries(
      SECTIONS.map(([id]) => [
        id,
        h("div", { role: "tabpanel", id: `adm-panel-${id}`, "aria-labelledby": `adm-tab-${id}`, class: "tab-panel", hidden: id !== this.section }),
      ]),
    );
    this.content = h(
      "div",
      { class: "admin-body" },
      h("div", { class: "tabs", role: "tablist", "aria-label": "Operator sections" }, this.tabButtons),
      Object.values(this.panels),
    );
    this.gate = h("div", { class: "admin-gate" });
    fill(
      root,
      h(
        "div",
        { class: "view-head" },
        h("h1", { id: "admin-h", tabindex: "-1", text: "Operator console" }),
        h(
          "div",
          { class: "head-tools" },
          keyBar("admin", {
            id: "adm-key",
            label: "Admin key",
            hint: "The gateway's admin key; kept in this tab only and sent only as an Authorization header.",
          }),
        ),
      ),
      this.gate,
      this.content,
    );
    this.buildAccounts();
    this.buildModels();
    this.buildUsage();
    this.buildEngines();
    onKeysChanged(() => {
      if (this.visible) this.show();
    });
  }

  show(sub) {
    this.visible = true;
    if (sub && this.panels[sub]) this.section = sub;
    if (!keys.admin) {
      this.content.hidden = true;
      fill(this.gate, noticeBox("Paste the admin key to manage accounts, keys, models and engines."));
      this.stopPolling();
      return;
    }
    fill(this.gate);
    this.content.hidden = false;
    this.select(this.section, false);
  }

  hide() {
    this.visible = false;
    this.stopPolling();
    // A new key's secret is shown once: not kept in the page once the operator leaves it.
    for (const area of this.detail.querySelectorAll(".secret-area")) area.replaceChildren();
  }

  select(id, updateHash = true) {
    this.section = id;
    for (const b of this.tabButtons) {
      const on = b.id === `adm-tab-${id}`;
      b.setAttribute("aria-selected", on ? "true" : "false");
      b.tabIndex = on ? 0 : -1;
    }
    for (const [pid, panel] of Object.entries(this.panels)) panel.hidden = pid !== id;
    if (updateHash && location.hash !== `#/admin/${id}`) history.replaceState(null, "", `#/admin/${id}`);
    this.stopPolling();
    if (id === "accounts") this.loadAccounts();
    if (id === "models") this.loadModels();
    if (id === "usage") this.usage.reload();
    if (id === "engines") {
      this.loadEngines();
      this.poll = setInterval(() => this.loadEngines(true), 3000);
    }
  }

  stopPolling() {
    if (this.poll) clearInterval(this.poll);
    this.poll = null;
  }

  // ---- accounts ----

  buildAccounts() {
    const i = (id, attrs = {}) => h("input", { type: "text", id, autocomplete: "off", spellcheck: "false", ...attrs });
    const c = {
      id: i("adm-new-id", { placeholder: "optional (generated)" }),
      name: i("adm-new-name", { required: true, placeholder: "acme" }),
      balance: i("adm-new-balance", { inputmode: "decimal", placeholder: "0.00" }),
      multiplier: i("adm-new-multiplier", { inputmode: "decimal", placeholder: "1" }),
      models: i("adm-new-models", { placeholder: "all (or: qwen, yi-34b)" }),
      rpm: i("adm-new-rpm", { inputmode: "numeric", placeholder: "—" }),
      tpm: i("adm-new-tpm", { inputmode: "numeric", placeholder: "—" }),
      concurrent: i("adm-new-concurrent", { inputmode: "numeric", placeholder: "—" }),
    };
    const createError = h("div", { class: "error-area", "aria-live": "polite" });
    const create = h("button", { type: "submit", class: "primary", id: "adm-new-submit", text: "Create account" });
    const form = h(
      "form",
      { class: "grid-form", "aria-label": "New account" },
      field("Name", c.name),
      field("Id", c.id),
      field("Balance", c.balance),
      field("Price multiplier", c.multiplier),
      field("Allowed models", c.models, "Comma-separated; empty allows all."),
      field("Requests/min", c.rpm),
      field("Tokens/min", c.tpm),
      field("Concurrent", c.concurrent),
      h("div", { class: "field actions" }, create),
      createError,
    );
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      fill(createError);
      const body = { name: c.name.value.trim() };
      if (c.id.value.trim()) body.id = c.id.value.trim();
      if (c.balance.value.trim()) body.balance = c.balance.value.trim();
      if (c.multiplier.value.trim()) body.price_multiplier = c.multiplier.value.trim();
      const models = parseList(c.models.value);
      if (models) body.models = models;
      const limits = parseLimits(c.rpm.value, c.tpm.value, c.concurrent.value);
      if (limits) body.limits = limits;
      await busy(create, async () => {
        try {
          const account = await admin.createAccount(body);
          toast(`Created the account ${account.id}`);
          form.reset();
          this.createDetails.open = false;
          await this.loadAccounts();
          await this.openAccount(account.id);
        } catch (error) {
          fill(createError, errorBox(error));
        }
      });
    });
    this.createDetails = h("details", { class: "card create" }, h("summary", { text: "New account" }), form);
    this.accountsError = h("div", { class: "error-area", "aria-live": "polite" });
    this.accountsList = h("div", { id: "adm-accounts" });
    this.moreAccounts = h("button", { type: "button", text: "More accounts", hidden: true });
    this.moreAccounts.addEventListener("click", () => this.loadAccounts(true));
    this.detail = h("div", { id: "adm-account-detail", class: "account-detail" });
    fill(
      this.panels.accounts,
      this.createDetails,
      h(
        "section",
        { class: "card", "aria-labelledby": "adm-accounts-h" },
        h("h2", { id: "adm-accounts-h", text: "Accounts" }),
        this.accountsError,
        this.accountsList,
        this.moreAccounts,
      ),
      this.detail,
    );
  }

  async loadAccounts(more = false) {
    fill(this.accountsError);
    try {
      const after = more && this.accounts.length ? this.accounts[this.accounts.length - 1].id : undefined;
      const page = await admin.accounts({ limit: 100, after });
      this.accounts = more ? [...this.accounts, ...(page.data || [])] : page.data || [];
      this.moreAccounts.hidden = !page.has_more;
      this.drawAccounts();
    } catch (error) {
      fill(this.accountsError, errorBox(error));
    }
  }

  drawAccounts() {
    const manage = (a) => {
      const b = h("button", { type: "button", class: "small", dataset: { account: a.id }, text: "Manage", "aria-label": `Manage ${a.id}` });
      b.addEventListener("click", () => this.openAccount(a.id, true));
      return b;
    };
    fill(
      this.accountsList,
      dataTable(
        [
          { label: "Id", value: (a) => h("code", { text: a.id }) },
          { label: "Name", value: (a) => a.name },
          { label: "Balance", value: (a) => a.balance, class: "num" },
          { label: "Held", value: (a) => a.held, class: "num" },
          { label: "Multiplier", value: (a) => a.price_multiplier, class: "num" },
          { label: "Status", value: (a) => h("span", { class: `badge status-${a.status}`, text: a.status }) },
          { label: "Models", value: (a) => fmtModels(a.models) },
          { label: "Limits", value: (a) => fmtLimits(a.limits) },
          { label: "", value: manage, class: "actions" },
        ],
        this.accounts,
        { caption: "Accounts", empty: "No accounts yet." },
      ),
    );
  }

  async openAccount(id, focus = false) {
    try {
      const [account, keyList] = await Promise.all([admin.account(id), admin.keys(id)]);
      this.selected = account;
      this.drawDetail(account, keyList.data || []);
      if (focus) {
        const head = this.detail.querySelector("h2");
        if (head) head.focus();
      }
    } catch (error) {
      fill(this.detail, errorBox(error));
    }
  }

  async refreshAccount() {
    if (this.selected) await this.openAccount(this.selected.id);
    await this.loadAccounts();
  }

  drawDetail(a, keyRows) {
    const errorArea = h("div", { class: "error-area", "aria-live": "polite" });
    const fail = (error) => fill(errorArea, errorBox(error));

    // Suspend / activate
    const suspended = a.status === "suspended";
    const toggle = h("button", {
      type: "button",
      id: "adm-toggle-status",
      class: suspended ? "primary" : "danger",
      text: suspended ? "Activate" : "Suspend",
    });
    toggle.addEventListener("click", () =>
      busy(toggle, async () => {
        try {
          await admin.patchAccount(a.id, { status: suspended ? "active" : "suspended" });
          toast(suspended ? `Activated ${a.id}` : `Suspended ${a.id}`);
          await this.refreshAccount();
        } catch (error) {
          fail(error);
        }
      }),
    );

    // Top up: a new idempotency key for every click, so a retried click cannot credit twice.
    const amount = h("input", { type: "text", id: "adm-credit-amount", inputmode: "decimal", placeholder: "5.00", required: true, autocomplete: "off" });
    const reason = h("input", { type: "text", id: "adm-credit-reason", placeholder: "top-up", autocomplete: "off" });
    const credit = h("button", { type: "submit", class: "primary", id: "adm-credit-submit", text: "Add credit" });
    const creditNote = h("p", { class: "hint", "aria-live": "polite" });
    const creditForm = h(
      "form",
      { class: "grid-form", "aria-label": "Top up" },
      field("Amount", amount, "Negative amounts adjust down."),
      field("Reason", reason),
      h("div", { class: "field actions" }, credit),
      creditNote,
    );
    creditForm.addEventListener("submit", (event) => {
      event.preventDefault();
      const idempotencyKey = uuid();
      busy(credit, async () => {
        fill(errorArea);
        try {
          const answer = await admin.credit(a.id, {
            amount: amount.value.trim(),
            reason: reason.value.trim() || "top-up",
            idempotency_key: idempotencyKey,
          });
          creditNote.textContent = `Balance now ${answer.balance} (${answer.credit_applied === false ? "already applied" : "applied"}; idempotency key ${idempotencyKey}).`;
          amount.value = "";
          toast(`Credited ${a.id}`);
          await this.refreshAccount();
        } catch (error) {
          fail(error);
        }
      });
    });

    // Settings: name, multiplier, allowed models, limits (PATCH replaces the limits as a whole).
    const lim = a.limits || {};
    const val = (v) => (v === null || v === undefined ? "" : String(v));
    const s = {
      name: h("input", { type: "text", id: "adm-set-name", value: a.name || "", autocomplete: "off" }),
      multiplier: h("input", { type: "text", id: "adm-set-multiplier", value: a.price_multiplier || "", inputmode: "decimal", autocomplete: "off" }),
      models: h("input", { type: "text", id: "adm-set-models", value: a.models ? a.models.join(", ") : "", placeholder: "all", autocomplete: "off" }),
      rpm: h("input", { type: "text", id: "adm-set-rpm", value: val(lim.requests_per_minute), inputmode: "numeric", placeholder: "—" }),
      tpm: h("input", { type: "text", id: "adm-set-tpm", value: val(lim.tokens_per_minute), inputmode: "numeric", placeholder: "—" }),
      concurrent: h("input", { type: "text", id: "adm-set-concurrent", value: val(lim.concurrent), inputmode: "numeric", placeholder: "—" }),
    };
    const save = h("button", { type: "submit", class: "primary", id: "adm-set-submit", text: "Save settings" });
    const settingsForm = h(
      "form",
      { class: "grid-form", "aria-label": "Settings" },
      field("Name", s.name),
      field("Price multiplier", s.multiplier),
      field("Allowed models", s.models, "Comma-separated; empty allows all."),
      field("Requests/min", s.rpm, "Empty: the config's; “unlimited” lifts it."),
      field("Tokens/min", s.tpm),
      field("Concurrent", s.concurrent),
      h("div", { class: "field actions" }, save),
    );
    settingsForm.addEventListener("submit", (event) => {
      event.preventDefault();
      busy(save, async () => {
        fill(errorArea);
        try {
          await admin.patchAccount(a.id, {
            name: s.name.value.trim(),
            price_multiplier: s.multiplier.value.trim(),
            models: parseList(s.models.value),
            limits: parseLimits(s.rpm.value, s.tpm.value, s.concurrent.value),
          });
          toast(`Saved ${a.id}`);
          await this.refreshAccount();
        } catch (error) {
          fail(error);
        }
      });
    });

    // Keys: create (the secret shown once), list, revoke.
    const label = h("input", { type: "text", id: "adm-key-label", placeholder: "prod", required: true, autocomplete: "off" });
    const keyModels = h("input", { type: "text", id: "adm-key-models", placeholder: "all the account may", autocomplete: "off" });
    const expires = h("input", { type: "date", id: "adm-key-expires" });
    const createKey = h("button", { type: "submit", class: "primary", id: "adm-key-submit", text: "Create key" });
    const secretArea = h("div", { class: "secret-area", "aria-live": "polite" });
    const keyForm = h(
      "form",
      { class: "grid-form", "aria-label": "New key" },
      field("Label", label),
      field("Models", keyModels, "Comma-separated; empty: all the account may use."),
      field("Expires (UTC day)", expires, "Empty: never."),
      h("div", { class: "field actions" }, createKey),
    );
    keyForm.addEventListener("submit", (event) => {
      event.preventDefault();
      busy(createKey, async () => {
        fill(errorArea);
        const body = { label: label.value.trim() };
        const models = parseList(keyModels.value);
        if (models) body.models = models;
        if (expires.value) body.expires_at = Math.floor(Date.parse(`${expires.value}T00:00:00Z`) / 1000);
        try {
          const created = await admin.createKey(a.id, body);
          keyForm.reset();
          const rows = (await admin.keys(a.id)).data || [];
          fill(keysList, this.keysTable(a, rows, fail));
          fill(secretArea, secretBox(created));
        } catch (error) {
          fail(error);
        }
      });
    });
    const keysList = h("div", { id: "adm-keys" }, this.keysTable(a, keyRows, fail));

    fill(
      this.detail,
      h(
        "section",
        { class: "card", "aria-labelledby": "adm-detail-h" },
        h(
          "div",
          { class: "card-head" },
          h("h2", { id: "adm-detail-h", tabindex: "-1" }, `${a.name || a.id} `, h("code", { class: "muted", text: a.id })),
          h("span", { class: `badge status-${a.status}`, dataset: { field: "status" }, text: a.status }),
          toggle,
        ),
        h(
          "dl",
          { class: "figures" },
          fig("balance", "Balance", a.balance),
          fig("held", "Held", a.held),
          fig("available", "Available", a.available),
          fig("multiplier", "Multiplier", a.price_multiplier),
        ),
        errorArea,
        h("div", { class: "detail-grid" },
          h("section", { class: "sub", "aria-labelledby": "adm-credit-h" }, h("h3", { id: "adm-credit-h", text: "Top up" }), creditForm),
          h("section", { class: "sub", "aria-labelledby": "adm-set-h" }, h("h3", { id: "adm-set-h", text: "Settings" }), settingsForm),
        ),
        h(
          "section",
          { class: "sub", "aria-labelledby": "adm-keys-h" },
          h("h3", { id: "adm-keys-h", text: "Keys" }),
          keyForm,
          secretArea,
          keysList,
        ),
      ),
    );
  }

  keysTable(a, rows, fail) {
    const revoke = (k) => {
      if (k.revoked_at) return h("span", { class: "muted", text: "revoked" });
      const b = h("button", { type: "button", class: "small danger", dataset: { key: k.id }, text: "Revoke", "aria-label": `Revoke ${k.label || k.id}` });
      let armed = false;
      b.addEventListener("click", async () => {
        if (!armed) {
          armed = true;
          b.textContent = "Confirm revoke";
          setTimeout(() => {
            armed = false;
            b.textContent = "Revoke";
          }, 4000);
          return;
        }
        await busy(b, async () => {
          try {
            await admin.revokeKey(k.id);
            toast(`Revoked ${k.label || k.id}`);
            await this.openAccount(a.id);
          } catch (error) {
            fail(error);
          }
        });
      });
      return b;
    };
    return dataTable(
      [
        { label: "Label", value: (k) => k.label },
        { label: "Id", value: (k) => h("code", { text: k.id }) },
        { label: "Prefix", value: (k) => h("code", { text: `${k.prefix}…` }) },
        { label: "Models", value: (k) => fmtModels(k.models) },
        { label: "Limits", value: (k) => fmtLimits(k.limits) },
        { label: "Expires", value: (k) => (k.expires_at ? fmtTime(k.expires_at) : "never") },
        { label: "Created", value: (k) => fmtTime(k.created_at) },
        { label: "Revoked", value: (k) => (k.revoked_at ? fmtTime(k.revoked_at) : "—") },
        { label: "", value: revoke, class: "actions" },
      ],
      rows,
      { caption: "Keys", empty: "No keys yet." },
    );
  }

  // ---- models ----

  buildModels() {
    this.modelsError = h("div", { class: "error-area", "aria-live": "polite" });
    this.modelsList = h("div", { id: "adm-models" });
    fill(
      this.panels.models,
      h("section", { class: "card", "aria-labelledby": "adm-models-h" }, h("h2", { id: "adm-models-h", text: "Model catalog" }), this.modelsError, this.modelsList),
    );
  }

  async loadModels() {
    fill(this.modelsError);
    try {
      const answer = await admin.models();
      fill(
        this.modelsList,
        dataTable(
          [
            { label: "Model", value: (m) => h("strong", { text: m.id }) },
            { label: "Price", value: (m) => (m.pricing ? fmtPrice(m.pricing) : "free"), class: "price" },
            { label: "Context", value: (m) => (m.context_length ? fmtInt(m.context_length) : "—"), class: "num" },
            { label: "Description", value: (m) => m.description },
            { label: "Endpoints", value: (m) => (m.endpoints || []).join(", ") },
            { label: "Aliases", value: (m) => (m.aliases || []).join(", ") },
            {
              label: "Deployments",
              value: (m) => (m.deployments || []).map((d) => `${d.provider}${d.model ? `/${d.model}` : ""}`).join(", "),
            },
          ],
          answer.data || [],
          { caption: "Models", empty: "The catalog is empty." },
        ),
      );
    } catch (error) {
      fill(this.modelsList);
      fill(this.modelsError, errorBox(error));
    }
  }

  // ---- usage ----

  buildUsage() {
    this.usage = new UsageView({
      idPrefix: "adm-usage",
      withAccount: true,
      api: { usage: admin.usage, usageCsv: admin.usageCsv, summary: admin.summary },
    });
    fill(this.panels.usage, h("h2", { class: "section-title", text: "Usage across accounts" }), this.usage.el);
  }

  // ---- engines ----

  buildEngines() {
    this.enginesError = h("div", { class: "error-area", "aria-live": "polite" });
    this.enginesList = h("div", { id: "adm-engines" });
    const refresh = h("button", { type: "button", class: "small", text: "Refresh" });
    refresh.addEventListener("click", () => busy(refresh, () => this.loadEngines()));
    fill(
      this.panels.engines,
      h(
        "section",
        { class: "card", "aria-labelledby": "adm-engines-h" },
        h("div", { class: "card-head" }, h("h2", { id: "adm-engines-h", text: "Managed engines" }), refresh),
        h("p", { class: "hint", text: "Engines the gateway starts on demand (kind: managed); refreshed every 3 seconds." }),
        this.enginesError,
        this.enginesList,
      ),
    );
  }

  async loadEngines(quiet = false) {
    if (!quiet) fill(this.enginesError);
    try {
      const answer = await admin.engines();
      fill(this.enginesError);
      const action = (e) => {
        const start = h("button", { type: "button", class: "small primary", text: "Start", dataset: { engine: e.name, action: "start" }, "aria-label": `Start ${e.name}` });
        const stop = h("button", { type: "button", class: "small danger", text: "Stop", dataset: { engine: e.name, action: "stop" }, "aria-label": `Stop ${e.name}` });
        start.disabled = e.state === "ready" || e.state === "starting";
        stop.disabled = e.state === "stopped" || e.state === "stopping" || e.state === "crashed";
        for (const [b, verb] of [
          [start, "start"],
          [stop, "stop"],
        ]) {
          b.addEventListener("click", () =>
            busy(b, async () => {
              try {
                await admin.engine(e.name, verb);
                toast(`${verb === "start" ? "Starting" : "Stopping"} ${e.name}`);
              } catch (error) {
                fill(this.enginesError, errorBox(error));
              }
              await this.loadEngines(true);
            }),
          );
        }
        return h("div", { class: "inline" }, start, stop);
      };
      fill(
        this.enginesList,
        dataTable(
          [
            { label: "Engine", value: (e) => h("strong", { text: e.name }) },
            { label: "State", value: (e) => h("span", { class: `badge engine-${e.state}`, text: e.state }) },
            { label: "Models", value: (e) => (e.models || []).join(", ") },
            { label: "Group", value: (e) => e.group },
            { label: "Pid / port", value: (e) => (e.pid ? `${e.pid} / ${e.port}` : "—") },
            { label: "In flight", value: (e) => fmtInt(e.requests_in_flight), class: "num" },
            { label: "Waiting", value: (e) => fmtInt(e.requests_waiting), class: "num" },
            { label: "Loads", value: (e) => fmtInt(e.loads), class: "num" },
            { label: "Last load", value: (e) => fmtMs(e.last_load_ms), class: "num" },
            { label: "Crashes", value: (e) => fmtInt(e.crashes), class: "num" },
            { label: "Last used", value: (e) => (e.last_used_at ? fmtTime(e.last_used_at) : "—") },
            { label: "", value: action, class: "actions" },
          ],
          answer.data || [],
          { caption: "Engines", empty: "No managed engines in this configuration." },
        ),
      );
    } catch (error) {
      if (error instanceof ApiError && error.unknownRoute) {
        fill(this.enginesList, noticeBox("This gateway serves no /admin/v1/engines."));
        this.stopPolling();
        return;
      }
      fill(this.enginesError, errorBox(error));
    }
  }
}

function fig(name, label, value) {
  return h("div", { class: "figure" }, h("dt", { text: label }), h("dd", { dataset: { field: name }, text: value ?? "—" }));
}

/** The new key's secret, shown once, with a copy button and a way into the playground. */
function secretBox(created) {
  const secret = created.key;
  const use = h("button", { type: "button", class: "small", id: "adm-secret-use", text: "Use in the playground" });
  use.addEventListener("click", () => {
    keys.user = secret;
    location.hash = "#/playground";
  });
  return h(
    "div",
    { class: "alert success secret", role: "status" },
    h("p", {}, h("strong", { text: `Key “${created.label || created.id}” created. ` }), "Copy it now: it is shown only this once."),
    h("div", { class: "secret-row" }, h("code", { class: "secret-value", id: "adm-secret", tabindex: "0", text: secret }), copyButton(secret, "Copy key"), use),
  );
}
