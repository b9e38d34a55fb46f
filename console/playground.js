// The playground: a key, a model from /v1/models, a system prompt, a history and the sampling
// settings; the reply streams token by token (fetch + ReadableStream, SSE parsed in sse.js), Stop
// cancels it through the API and the ended stream's end_reason is shown; after each reply the
// ledger row (GET /v1/usage/{id}) gives tokens, cost, time to first token and generation time.
// "Raw" shows the exact request and every SSE event as received; "Code" the same call as code.
// Side by side sends the same prompt to two models at once.

import { ApiError, errorFrom, keys, onKeysChanged, user } from "/console/api.js";
import { SAMPLES } from "/console/code.js";
import { keyBar } from "/console/keybar.js";
import { readSSE } from "/console/sse.js";
import { copyButton, errorBox, field, fill, fmtInt, fmtMs, fmtPrice, h, noticeBox, tabKeys, uuid } from "/console/ui.js";

const CHAT = "/v1/chat/completions";
const MODEL_PREF = "switchyard.model";
const MODEL_B_PREF = "switchyard.modelB";
const POLL_MS = 250;
const POLL_LIMIT_MS = 30000;
const NARROW = matchMedia("(max-width: 960px)");

/** One conversation with one model: its history, its streaming reply, its stop and its figures. */
class Pane {
  constructor(index, playground) {
    this.index = index;
    this.playground = playground;
    this.history = []; // [{role, content}] without the system prompt
    this.running = false;
    this.raw = null;
    this.title = h("h3", { class: "pane-title", text: "" });
    this.state = h("span", { class: "badge pane-state", dataset: { state: "idle" }, text: "idle" });
    this.log = h("ol", { class: "transcript", "aria-live": "polite", "aria-label": "Conversation" });
    this.stats = h("dl", { class: "stats", "aria-label": "Figures of the last reply" });
    this.el = h(
      "section",
      { class: "pane card", dataset: { pane: String(index) } },
      h("div", { class: "pane-head" }, this.title, this.state),
      this.log,
      this.stats,
    );
    this.drawStats(null);
  }

  setModel(model) {
    this.model = model;
    this.title.textContent = model || "no model";
  }

  setState(state, text = state) {
    this.state.dataset.state = state;
    this.state.textContent = text;
  }

  reset() {
    this.history = [];
    this.raw = null;
    this.log.replaceChildren();
    this.drawStats(null);
    this.setState("idle");
  }

  addMessage(role, content) {
    const text = h("div", { class: "msg-text", text: content });
    const item = h("li", { class: `msg ${role}` }, h("span", { class: "msg-role", text: role }), text);
    this.log.append(item);
    item.scrollIntoView({ block: "nearest" });
    return { item, text };
  }

  body(prompt) {
    const s = this.playground.settings();
    const messages = [];
    if (s.system) messages.push({ role: "system", content: s.system });
    messages.push(...this.history, { role: "user", content: prompt });
    const body = { model: this.model, messages };
    if (s.temperature !== null) body.temperature = s.temperature;
    if (s.top_p !== null) body.top_p = s.top_p;
    if (s.max_tokens !== null) body.max_tokens = s.max_tokens;
    if (s.user) body.user = s.user;
    if (s.stream) {
      body.stream = true;
      body.stream_options = { include_usage: true };
    }
    return body;
  }

  async send(prompt) {
    if (this.running || !this.model) return;
    const body = this.body(prompt);
    const wire = JSON.stringify(body, null, 2); // sent exactly as shown in "Raw"
    const requestId = `console-${uuid()}`;
    this.running = true;
    this.stopRequested = false;
    this.cancelSent = false;
    this.id = null;
    delete this.el.dataset.requestId;
    this.row = null;
    this.endReason = null;
    this.abort = new AbortController();
    this.stream = !!body.stream;
    this.raw = {
      request: `POST ${CHAT}\nAuthorization: Bearer ••••••••\nContent-Type: application/json\nx-request-id: ${requestId}\n\n${wire}`,
      events: [],
      response: null,
    };
    this.playground.rawChanged();
    this.addMessage("user", prompt);
    const reply = this.addMessage("assistant", "");
    reply.item.classList.add("streaming");
    this.drawStats(null);
    this.setState("running", this.stream ? "streaming" : "waiting");
    const t0 = performance.now();
    let firstAt = null;
    let content = "";
    let usage = null;
    let error = null;
    try {
      const response = await fetch(CHAT, {
        method: "POST",
        headers: {
          Authorization: `Bearer ${keys.user}`,
          "Content-Type": "application/json",
          "x-request-id": requestId,
        },
        body: wire,
        signal: this.abort.signal,
        cache: "no-store",
        credentials: "omit",
      });
      if (!response.ok) throw await errorFrom(response);
      if (this.stream) {
        for await (const event of readSSE(response, { signal: this.abort.signal })) {
          this.raw.events.push({ t: Math.round(event.at - t0), raw: event.raw });
          this.playground.rawChanged();
          if (event.data === null) continue; // a comment (": loading MODEL")
          if (event.data === "[DONE]") break;
          let chunk;
          try {
            chunk = JSON.parse(event.data);
          } catch {
            continue;
          }
          if (chunk.error) {
            const e = chunk.error;
            throw new ApiError(e.message || JSON.stringify(e), { status: 200, type: e.type, code: e.code, param: e.param });
          }
          if (chunk.id && !this.id) {
            this.id = chunk.id;
            this.el.dataset.requestId = chunk.id;
          }
          if (chunk.end_reason) this.endReason = chunk.end_reason;
          if (chunk.usage) usage = chunk.usage;
          for (const choice of chunk.choices || []) {
            const delta = choice.delta && choice.delta.content;
            if (delta) {
              if (firstAt === null) firstAt = performance.now();
              content += delta;
              reply.text.append(document.createTextNode(delta));
            }
          }
        }
      } else {
        const text = await response.text();
        this.raw.response = text;
        this.playground.rawChanged();
        const answer = JSON.parse(text);
        firstAt = performance.now();
        this.id = answer.id || null;
        if (this.id) this.el.dataset.requestId = this.id;
        this.endReason = answer.end_reason || null;
        usage = answer.usage || null;
        content = (answer.choices && answer.choices[0] && answer.choices[0].message && answer.choices[0].message.content) || "";
        reply.text.textContent = content;
      }
    } catch (e) {
      error = e;
    }
    const tEnd = performance.now();
    this.running = false;
    reply.item.classList.remove("streaming");
    const aborted = (error && error.name === "AbortError") || this.abort.signal.aborted;
    if (aborted) error = null;
    if (error) reply.item.append(errorBox(error));
    if (content) this.history.push({ role: "user", content: prompt }, { role: "assistant", content });
    else if (!error) this.history.push({ role: "user", content: prompt });
    if (aborted) this.endReason = this.endReason || "client_closed";
    this.client = {
      latency: tEnd - t0,
      firstToken: firstAt === null ? null : firstAt - t0,
      usage,
    };
    this.setState(error ? "error" : "done", error ? "error" : this.endReason || "done");
    this.drawStats(null);
    this.playground.paneFinished();
    if (this.id || aborted) await this.loadLedger(requestId);
  }

  /** Stop: a started stream is cancelled through the API (its last chunk then carries end_reason
   *  "cancelled" and the usage billed). A request whose id is not known yet (a whole answer, or a
   *  stream still waiting for its first chunk, e.g. while an engine loads) is abandoned instead: the
   *  gateway sees the client leave and bills what was generated (end reason client_closed). */
  async stop() {
    if (!this.running) return;
    this.stopRequested = true;
    this.setState("stopping", "stopping…");
    if (this.stream && this.id) await this.cancel();
    else this.abort.abort();
  }

  async cancel() {
    if (this.cancelSent || !this.id) return;
    this.cancelSent = true;
    try {
      await user.cancel(this.id);
    } catch (error) {
      if (error instanceof ApiError && error.status === 404) return; // it had already ended
      this.log.append(h("li", { class: "msg note" }, errorBox(error)));
      this.abort.abort();
    }
  }

  /** The ledger row of this reply, polled until it is settled. */
  async loadLedger(requestId) {
    const deadline = performance.now() + POLL_LIMIT_MS;
    let row = null;
    let useList = !this.id;
    while (performance.now() < deadline) {
      try {
        if (!useList) {
          row = await user.usageRow(this.id);
        } else {
          const page = await user.usage({ limit: 50 });
          row = (page.data || []).find((r) => (this.id ? r.id === this.id : r.http_request_id === requestId)) || null;
        }
      } catch (error) {
        if (error instanceof ApiError && error.unknownRoute && !useList) {
          useList = true; // an older gateway without GET /v1/usage/{id}
          continue;
        }
        if (!(error instanceof ApiError && error.status === 404)) {
          this.drawStats(null, error);
          return;
        }
        row = null;
      }
      if (row && row.status !== "running") break;
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    }
    this.row = row;
    if (row && row.end_reason && !this.endReason) this.endReason = row.end_reason;
    this.drawStats(row);
    this.playground.paneFinished();
  }

  drawStats(row, error = null) {
    const c = this.client || {};
    const t = (row && row.timings_ms) || {};
    const u = (row && row.usage) || c.usage;
    const item = (name, label, value) =>
      h("div", { class: "stat" }, h("dt", { text: label }), h("dd", { dataset: { stat: name }, text: value ?? "—" }));
    fill(
      this.stats,
      item("tokens", "Tokens", u ? `${fmtInt(u.prompt_tokens)} + ${fmtInt(u.completion_tokens)} = ${fmtInt(u.total_tokens ?? (u.prompt_tokens || 0) + (u.completion_tokens || 0))}` : null),
      item("cost", "Cost", row ? row.cost : null),
      item("first-token", "First token", row ? fmtMs(t.first_token) : null),
      item("generation", "Generation", row ? fmtMs(t.generation) : null),
      item("latency", "Latency", c.latency ? fmtMs(c.latency) : null),
      item("end-reason", "End reason", this.endReason),
      item("status", "Ledger status", row ? row.status : this.running ? "running" : null),
      error ? h("div", { class: "stat wide" }, errorBox(error)) : null,
    );
  }
}

export class Playground {
  constructor(root) {
    this.root = root;
    this.models = [];
    this.modelsKey = null;
    this.panes = [new Pane(0, this)];
    this.tab = "chat";
    this.sample = "curl";
    this.build();
    onKeysChanged(() => {
      if (this.visible) this.loadModels();
    });
  }

  build() {
    const num = (id, attrs) => h("input", { type: "number", id, inputmode: "decimal", placeholder: "default", ...attrs });
    this.modelSelect = h("select", { id: "pg-model", "aria-describedby": "pg-model-info" });
    this.modelInfo = h("div", { class: "model-info", id: "pg-model-info" });
    this.modelSelectB = h("select", { id: "pg-model-b", "aria-describedby": "pg-model-b-info" });
    this.modelInfoB = h("div", { class: "model-info", id: "pg-model-b-info" });
    this.compare = h("input", { type: "checkbox", id: "pg-compare" });
    this.compareBox = h("div", { class: "compare-box", hidden: true }, field("Second model", this.modelSelectB), this.modelInfoB);
    this.system = h("textarea", { id: "pg-system", rows: 3, placeholder: "You are a helpful assistant." });
    this.temperature = num("pg-temperature", { min: 0, max: 2, step: 0.1 });
    this.topP = num("pg-top-p", { min: 0, max: 1, step: 0.05 });
    this.maxTokens = num("pg-max-tokens", { min: 1, step: 1, inputmode: "numeric" });
    this.streamBox = h("input", { type: "checkbox", id: "pg-stream", checked: true });
    this.endUser = h("input", { type: "text", id: "pg-user", placeholder: "optional, e.g. alice", autocomplete: "off" });
    this.modelsArea = h("div", { class: "error-area", "aria-live": "polite" });

    this.modelSelect.addEventListener("change", () => this.modelChanged());
    this.modelSelectB.addEventListener("change", () => this.modelChanged());
    this.compare.addEventListener("change", () => this.compareChanged());
    for (const el of [this.system, this.temperature, this.topP, this.maxTokens, this.streamBox, this.endUser]) {
      el.addEventListener("input", () => this.codeChanged());
      el.addEventListener("change", () => this.codeChanged());
    }

    // The settings: always shown on a wide screen; on a phone they fold away (a toggle) once a
    // reply is on its way, so the conversation gets the screen.
    this.settingsToggle = h(
      "button",
      { type: "button", class: "settings-toggle", "aria-expanded": "true", "aria-controls": "pg-settings-body" },
      h("span", { class: "settings-toggle-label", text: "Settings" }),
      h("span", { class: "settings-toggle-summary" }),
    );
    this.settingsToggle.addEventListener("click", () => this.foldSettings(!this.settingsEl.classList.contains("folded")));
    this.settingsEl = h(
      "section",
      { class: "pg-settings card", "aria-label": "Settings", id: "pg-settings" },
      this.settingsToggle,
      h(
        "div",
        { class: "settings-body", id: "pg-settings-body" },
        keyBar("user", {
          id: "pg-key",
          label: "API key",
          hint: "Kept in this tab only (sessionStorage), sent only as an Authorization header.",
        }),
        this.modelsArea,
        field("Model", this.modelSelect),
        this.modelInfo,
        h("div", { class: "check" }, this.compare, h("label", { for: "pg-compare", text: "Side by side: send to two models" })),
        this.compareBox,
        field("System prompt", this.system),
        h("div", { class: "row3" }, field("Temperature", this.temperature), field("top_p", this.topP), field("max_tokens", this.maxTokens)),
        h("div", { class: "check" }, this.streamBox, h("label", { for: "pg-stream", text: "Stream the reply" })),
        field("End user (user)", this.endUser, "Recorded in the ledger; the seed URL's {userid}."),
      ),
    );
    const settings = this.settingsEl;

    // Tabs: Chat | Raw | Code
    this.tabs = {};
    const tabList = h("div", { class: "tabs", role: "tablist", "aria-label": "Playground views" });
    for (const [id, label] of [
      ["chat", "Chat"],
      ["raw", "Raw"],
      ["code", "Code"],
    ]) {
      const tab = h("button", {
        type: "button",
        role: "tab",
        id: `pg-tab-${id}`,
        "aria-controls": `pg-panel-${id}`,
        "aria-selected": id === this.tab ? "true" : "false",
        tabindex: id === this.tab ? "0" : "-1",
        text: label,
      });
      tab.addEventListener("click", () => this.selectTab(id));
      tab.addEventListener("keydown", (e) => tabKeys(e, Object.values(this.tabs).map((t) => t.tab)));
      tabList.append(tab);
      this.tabs[id] = { tab };
    }

    this.panesEl = h("div", { class: "panes", id: "pg-panes" });
    this.message = h("textarea", {
      id: "pg-message",
      rows: 3,
      placeholder: "Say something… (Enter sends, Shift+Enter is a new line, Esc stops)",
      "aria-keyshortcuts": "Enter Escape",
    });
    this.sendButton = h("button", { type: "submit", class: "primary", id: "pg-send", text: "Send" });
    this.stopButton = h("button", { type: "button", id: "pg-stop", class: "danger", text: "Stop", disabled: true, "aria-keyshortcuts": "Escape" });
    this.clearButton = h("button", { type: "button", id: "pg-clear", text: "New chat" });
    this.composer = h(
      "form",
      { class: "composer", "aria-label": "Message" },
      h("label", { for: "pg-message", class: "visually-hidden", text: "Message" }),
      this.message,
      h("div", { class: "composer-actions" }, this.sendButton, this.stopButton, this.clearButton),
    );
    this.composer.addEventListener("submit", (e) => {
      e.preventDefault();
      this.sendAll();
    });
    this.message.addEventListener("keydown", (e) => {
      if (e.key === "Enter" && !e.shiftKey && !e.ctrlKey && !e.altKey && !e.metaKey && !e.isComposing) {
        e.preventDefault();
        this.sendAll();
      }
    });
    this.message.addEventListener("input", () => this.codeChanged());
    this.stopButton.addEventListener("click", () => this.stopAll());
    this.clearButton.addEventListener("click", () => {
      for (const p of this.panes) if (!p.running) p.reset();
      this.rawChanged();
      this.message.focus();
    });
    document.addEventListener("keydown", (e) => {
      if (e.key === "Escape" && this.visible && this.panes.some((p) => p.running)) {
        e.preventDefault();
        this.stopAll();
      }
    });
    this.composerError = h("div", { class: "error-area", "aria-live": "polite" });

    this.rawEl = h("div", { class: "raw", id: "pg-raw" });
    this.codeTabs = h("div", { class: "tabs small", role: "tablist", "aria-label": "Language" });
    this.codeButtons = SAMPLES.map((s) => {
      const b = h("button", {
        type: "button",
        role: "tab",
        id: `pg-code-${s.id}`,
        "aria-selected": s.id === this.sample ? "true" : "false",
        tabindex: s.id === this.sample ? "0" : "-1",
        "aria-controls": "pg-code-text",
        text: s.label,
      });
      b.addEventListener("click", () => {
        this.sample = s.id;
        for (const other of this.codeButtons) {
          const on = other === b;
          other.setAttribute("aria-selected", on ? "true" : "false");
          other.tabIndex = on ? 0 : -1;
        }
        this.codeChanged(true);
      });
      b.addEventListener("keydown", (e) => tabKeys(e, this.codeButtons));
      this.codeTabs.append(b);
      return b;
    });
    this.codeText = h("pre", { class: "code", id: "pg-code-text", tabindex: "0", role: "tabpanel" }, h("code", {}));
    this.codeNote = h("p", { class: "hint" });

    const panel = (id, ...children) =>
      h("div", { role: "tabpanel", id: `pg-panel-${id}`, "aria-labelledby": `pg-tab-${id}`, class: "tab-panel", hidden: id !== this.tab }, ...children);
    this.tabs.chat.panel = panel("chat", this.panesEl, this.composerError, this.composer);
    this.tabs.raw.panel = panel(
      "raw",
      h("p", { class: "hint", text: "The exact request of the last reply (the key masked) and every server-sent event as it arrived, with its time since sending." }),
      this.rawEl,
    );
    this.tabs.code.panel = panel(
      "code",
      this.codeTabs,
      h("div", { class: "code-head" }, this.codeNote, copyButton(() => this.codeText.textContent, "Copy code")),
      this.codeText,
    );

    const main = h(
      "div",
      { class: "pg-main" },
      tabList,
      this.tabs.chat.panel,
      this.tabs.raw.panel,
      this.tabs.code.panel,
    );
    fill(this.root, h("div", { class: "view-head" }, h("h1", { id: "playground-h", tabindex: "-1", text: "Playground" })), h("div", { class: "pg" }, settings, main));
    this.drawPanes();
    this.rawChanged();
  }

  /** Folds (or unfolds) the settings; only a narrow screen shows the toggle and honours it. */
  foldSettings(folded) {
    this.settingsEl.classList.toggle("folded", folded);
    this.settingsToggle.setAttribute("aria-expanded", folded ? "false" : "true");
  }

  settings() {
    const n = (el, int = false) => {
      const s = el.value.trim();
      if (!s) return null;
      const v = int ? parseInt(s, 10) : parseFloat(s);
      return Number.isFinite(v) ? v : null;
    };
    return {
      system: this.system.value.trim(),
      temperature: n(this.temperature),
      top_p: n(this.topP),
      max_tokens: n(this.maxTokens, true),
      stream: this.streamBox.checked,
      user: this.endUser.value.trim(),
    };
  }

  show() {
    this.visible = true;
    this.loadModels();
  }

  hide() {
    this.visible = false;
  }

  async loadModels() {
    const key = keys.user;
    fill(this.modelsArea);
    if (!key) {
      this.models = [];
      this.modelsKey = null;
      this.fillModels();
      fill(this.modelsArea, noticeBox("Paste a key to list the models it may use."));
      return;
    }
    if (this.modelsKey === key && this.models.length) return;
    try {
      const answer = await user.models();
      this.models = (answer.data || []).filter(isChatModel);
      if (!this.models.length) this.models = answer.data || [];
      this.modelsKey = key;
      this.fillModels();
    } catch (error) {
      this.models = [];
      this.fillModels();
      fill(this.modelsArea, errorBox(error));
    }
  }

  fillModels() {
    const saved = [localStorage.getItem(MODEL_PREF), localStorage.getItem(MODEL_B_PREF)];
    [this.modelSelect, this.modelSelectB].forEach((select, i) => {
      const previous = select.value || saved[i];
      fill(
        select,
        this.models.length
          ? this.models.map((m) => h("option", { value: m.id, text: m.id }))
          : h("option", { value: "", text: "no models" }),
      );
      const ids = this.models.map((m) => m.id);
      if (ids.includes(previous)) select.value = previous;
      else if (i === 1 && ids.length > 1) select.value = ids.find((id) => id !== this.modelSelect.value) || ids[0];
    });
    this.modelChanged();
  }

  modelChanged() {
    const a = this.modelSelect.value;
    const b = this.modelSelectB.value;
    if (a) localStorage.setItem(MODEL_PREF, a);
    if (b) localStorage.setItem(MODEL_B_PREF, b);
    this.drawModelInfo(this.modelInfo, a);
    this.drawModelInfo(this.modelInfoB, b);
    this.panes[0].setModel(a);
    if (this.panes[1]) this.panes[1].setModel(b);
    this.settingsToggle.lastChild.textContent = [a, this.panes[1] ? b : null].filter(Boolean).join(" + ");
    this.codeChanged();
  }

  drawModelInfo(el, id) {
    const m = this.models.find((x) => x.id === id);
    if (!m) {
      el.replaceChildren();
      return;
    }
    fill(
      el,
      h(
        "dl",
        { class: "facts" },
        h("div", {}, h("dt", { text: "Context" }), h("dd", { dataset: { fact: "context" }, text: m.context_length ? `${fmtInt(m.context_length)} tokens` : "—" })),
        h("div", {}, h("dt", { text: "Price" }), h("dd", { dataset: { fact: "price" }, text: m.pricing ? fmtPrice(m.pricing) : "not listed" })),
        m.aliases && m.aliases.length ? h("div", {}, h("dt", { text: "Aliases" }), h("dd", { text: m.aliases.join(", ") })) : null,
      ),
      m.description ? h("p", { class: "description", dataset: { fact: "description" }, text: m.description }) : null,
    );
  }

  compareChanged() {
    const on = this.compare.checked;
    this.compareBox.hidden = !on;
    if (on && this.panes.length === 1) {
      const b = new Pane(1, this);
      b.history = this.panes[0].history.slice();
      for (const m of b.history) b.addMessage(m.role, m.content);
      this.panes.push(b);
    } else if (!on && this.panes.length === 2 && !this.panes[1].running) {
      this.panes.pop();
    }
    this.modelChanged();
    this.drawPanes();
  }

  drawPanes() {
    fill(this.panesEl, this.panes.map((p) => p.el));
    this.panesEl.classList.toggle("two", this.panes.length === 2);
  }

  async sendAll() {
    fill(this.composerError);
    const prompt = this.message.value.trim();
    if (!prompt) {
      this.message.focus();
      return;
    }
    if (!keys.user) {
      fill(this.composerError, errorBox(new ApiError("Paste a key first (in the settings).")));
      return;
    }
    if (!this.modelSelect.value) {
      fill(this.composerError, errorBox(new ApiError("Choose a model first.")));
      return;
    }
    if (this.panes.some((p) => p.running)) return;
    this.message.value = "";
    if (NARROW.matches) this.foldSettings(true);
    this.sendButton.disabled = true;
    this.stopButton.disabled = false;
    this.selectTab("chat");
    await Promise.all(this.panes.map((p) => p.send(prompt)));
    this.codeChanged();
  }

  async stopAll() {
    await Promise.all(this.panes.map((p) => p.stop()));
  }

  paneFinished() {
    const running = this.panes.some((p) => p.running);
    this.sendButton.disabled = running;
    this.stopButton.disabled = !running;
    this.rawChanged();
  }

  selectTab(id) {
    this.tab = id;
    for (const [tid, t] of Object.entries(this.tabs)) {
      const on = tid === id;
      t.tab.setAttribute("aria-selected", on ? "true" : "false");
      t.tab.tabIndex = on ? 0 : -1;
      if (t.panel) t.panel.hidden = !on;
    }
    if (id === "raw") this.rawChanged(true);
    if (id === "code") this.codeChanged(true);
  }

  rawChanged(force = false) {
    if (!force && this.tab !== "raw") return;
    if (this.rawFrame) return;
    this.rawFrame = requestAnimationFrame(() => {
      this.rawFrame = null;
      const parts = this.panes.map((p) => {
        if (!p.raw) return h("section", { class: "raw-pane" }, h("h3", { text: p.model || "—" }), h("p", { class: "empty", text: "Nothing sent yet." }));
        const events = p.raw.events.map((e) => `+${e.t} ms\n${e.raw}`).join("\n\n");
        return h(
          "section",
          { class: "raw-pane", dataset: { pane: String(p.index) } },
          h("h3", { text: p.model || "—" }),
          h("div", { class: "code-head" }, h("h4", { text: "Request" }), copyButton(() => p.raw.request, "Copy request")),
          h("pre", { class: "code raw-request", tabindex: "0" }, h("code", { text: p.raw.request })),
          p.stream
            ? [
                h("h4", { text: `Events as received (${p.raw.events.length})` }),
                h("pre", { class: "code raw-events", tabindex: "0" }, h("code", { text: events || "(none yet)" })),
              ]
            : [
                h("h4", { text: "Response body" }),
                h("pre", { class: "code raw-response", tabindex: "0" }, h("code", { text: p.raw.response ?? "(waiting)" })),
              ],
        );
      });
      fill(this.rawEl, parts);
    });
  }

  codeChanged(force = false) {
    if (!force && this.tab !== "code") return;
    const pane = this.panes[0];
    const prompt = this.message.value.trim() || "Hello";
    const body = pane.body(prompt);
    if (!body.model) body.model = "MODEL";
    const sample = SAMPLES.find((s) => s.id === this.sample) || SAMPLES[0];
    this.codeText.firstChild.textContent = sample.render(body);
    this.codeNote.textContent =
      sample.id === "seed"
        ? "The seed service's URL: the key goes in the path (YOUR_KEY here), the end user and the model after it."
        : `Base URL ${location.origin}/v1; the key is read from the environment variable SWITCHYARD_KEY.`;
  }
}

function isChatModel(m) {
  if (!Array.isArray(m.endpoints) || !m.endpoints.length) return true;
  return m.endpoints.some((e) => /chat/.test(e));
}
