// The gateway's API as the console calls it: same origin, JSON, the key only ever in an
// `Authorization: Bearer` header (never in a URL, never logged), errors as the API's own message.

import { sumMoney } from "/console/ui.js";

const KEY = "switchyard.key";
const ADMIN_KEY = "switchyard.adminKey";

/** Keys live in sessionStorage only: gone when the tab closes, never sent anywhere but as a header. */
export const keys = {
  get user() {
    return sessionStorage.getItem(KEY) || "";
  },
  set user(value) {
    if (value) sessionStorage.setItem(KEY, value);
    else sessionStorage.removeItem(KEY);
    notify();
  },
  get admin() {
    return sessionStorage.getItem(ADMIN_KEY) || "";
  },
  set admin(value) {
    if (value) sessionStorage.setItem(ADMIN_KEY, value);
    else sessionStorage.removeItem(ADMIN_KEY);
    notify();
  },
};

const listeners = new Set();
/** Calls fn whenever a key is saved or forgotten. */
export function onKeysChanged(fn) {
  listeners.add(fn);
}
function notify() {
  for (const fn of listeners) fn();
}

/** An error the API answered ({"error": {"message", "type", "param", "code"}}), or a network failure. */
export class ApiError extends Error {
  constructor(message, { status = 0, type = null, code = null, param = null } = {}) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.type = type;
    this.code = code;
    this.param = param;
  }

  /** The route does not exist on this gateway (an older binary): callers degrade. */
  get unknownRoute() {
    return this.status === 404 && (this.code === "unknown_url" || this.code === null);
  }
}

/** The ApiError for a response that is not ok, from its body's error object when it has one. */
export async function errorFrom(response) {
  const text = await response.text().catch(() => "");
  return errorFromText(response.status, text, response.statusText);
}

export function errorFromText(status, text, statusText = "") {
  let body = null;
  try {
    body = JSON.parse(text);
  } catch {
    body = null;
  }
  const err = body && typeof body === "object" ? body.error : null;
  if (err && typeof err === "object" && err.message) {
    return new ApiError(err.message, { status, type: err.type ?? null, code: err.code ?? null, param: err.param ?? null });
  }
  if (typeof err === "string") return new ApiError(err, { status });
  const snippet = (text || "").trim().slice(0, 300);
  return new ApiError(snippet || `HTTP ${status} ${statusText}`.trim(), { status });
}

function query(params) {
  if (!params) return "";
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null && v !== "") q.set(k, String(v));
  }
  const s = q.toString();
  return s ? `?${s}` : "";
}

/**
 * fetch() with the bearer header. Returns the Response when ok; throws ApiError otherwise.
 * `key` is the key itself (keys.user or keys.admin); it never goes into the URL.
 */
export async function call(method, path, { key, body, params, signal, headers = {} } = {}) {
  const init = { method, headers: { ...headers }, signal, cache: "no-store", credentials: "omit" };
  if (key) init.headers.Authorization = `Bearer ${key}`;
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = typeof body === "string" ? body : JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path + query(params), init);
  } catch (error) {
    if (error && error.name === "AbortError") throw error;
    throw new ApiError(`Could not reach the gateway: ${error && error.message ? error.message : error}`);
  }
  if (!response.ok) throw await errorFrom(response);
  return response;
}

export async function json(method, path, options = {}) {
  const response = await call(method, path, options);
  if (response.status === 204) return null;
  const text = await response.text();
  if (!text) return null;
  try {
    return JSON.parse(text);
  } catch {
    throw new ApiError(`The gateway answered something that is not JSON: ${text.slice(0, 200)}`, { status: response.status });
  }
}

/** Key-holder calls. */
export const user = {
  models: () => json("GET", "/v1/models", { key: keys.user }),
  account: () => json("GET", "/v1/account", { key: keys.user }),
  usage: (params) => json("GET", "/v1/usage", { key: keys.user, params }),
  usageCsv: (params) => call("GET", "/v1/usage", { key: keys.user, params: { ...params, format: "csv" } }),
  usageRow: (id) => json("GET", `/v1/usage/${encodeURIComponent(id)}`, { key: keys.user }),
  summary: (params) => json("GET", "/v1/usage/summary", { key: keys.user, params }),
  cancel: (id, api = "chat/completions") =>
    json("POST", `/v1/${api}/${encodeURIComponent(id)}/cancel`, { key: keys.user }),
};

/** Operator calls (the admin key). */
export const admin = {
  accounts: (params) => json("GET", "/admin/v1/accounts", { key: keys.admin, params }),
  account: (id) => json("GET", `/admin/v1/accounts/${encodeURIComponent(id)}`, { key: keys.admin }),
  createAccount: (body) => json("POST", "/admin/v1/accounts", { key: keys.admin, body }),
  patchAccount: (id, body) => json("PATCH", `/admin/v1/accounts/${encodeURIComponent(id)}`, { key: keys.admin, body }),
  credit: (id, body) => json("POST", `/admin/v1/accounts/${encodeURIComponent(id)}/credits`, { key: keys.admin, body }),
  keys: (id) => json("GET", `/admin/v1/accounts/${encodeURIComponent(id)}/keys`, { key: keys.admin }),
  createKey: (id, body) => json("POST", `/admin/v1/accounts/${encodeURIComponent(id)}/keys`, { key: keys.admin, body }),
  revokeKey: (keyId) => json("DELETE", `/admin/v1/keys/${encodeURIComponent(keyId)}`, { key: keys.admin }),
  models: () => json("GET", "/admin/v1/models", { key: keys.admin }),
  usage: (params) => json("GET", "/admin/v1/usage", { key: keys.admin, params }),
  usageCsv: (params) => call("GET", "/admin/v1/usage", { key: keys.admin, params: { ...params, format: "csv" } }),
  summary: (params) => json("GET", "/admin/v1/usage/summary", { key: keys.admin, params }),
  engines: () => json("GET", "/admin/v1/engines", { key: keys.admin }),
  engine: (name, action) => json("POST", `/admin/v1/engines/${encodeURIComponent(name)}/${action}`, { key: keys.admin }),
};

/**
 * Use per UTC day and model ({day, model, requests, prompt_tokens, completion_tokens, cost}) from
 * the summary route; on a gateway without it, summed here from the ledger's pages (at most 5,000 rows).
 * Returns {data, derived}.
 */
export async function summaryOrDerived(summaryFn, usageFn, params) {
  try {
    const answer = await summaryFn(params);
    return { data: answer.data || [], derived: false };
  } catch (error) {
    if (!(error instanceof ApiError) || !error.unknownRoute) throw error;
  }
  const sums = new Map();
  let cursor = null;
  for (let page = 0; page < 5; page++) {
    const answer = await usageFn({ ...params, limit: 1000, cursor });
    for (const row of answer.data || []) {
      const day = new Date(Number(row.started_at) * 1000).toISOString().slice(0, 10);
      const k = `${day}\u0000${row.model}`;
      const s = sums.get(k) || { day, model: row.model, requests: 0, prompt_tokens: 0, completion_tokens: 0, costs: [] };
      s.requests += 1;
      s.prompt_tokens += (row.usage && row.usage.prompt_tokens) || 0;
      s.completion_tokens += (row.usage && row.usage.completion_tokens) || 0;
      s.costs.push(row.cost || "0");
      sums.set(k, s);
    }
    cursor = answer.next_cursor;
    if (!cursor) break;
  }
  const data = Array.from(sums.values()).map(({ costs, ...s }) => ({ ...s, cost: sumMoney(costs) }));
  return { data, derived: true };
}

/** Every CSV page of the ledger (following x-next-cursor), as one CSV text with one header line. */
export async function allCsv(csvFn, params, maxPages = 100) {
  let cursor = null;
  let out = "";
  for (let page = 0; page < maxPages; page++) {
    const response = await csvFn({ ...params, limit: 1000, cursor });
    let text = await response.text();
    if (page > 0) {
      const nl = text.indexOf("\n");
      text = nl >= 0 ? text.slice(nl + 1) : "";
    }
    if (text && !text.endsWith("\n")) text += "\n";
    out += text;
    cursor = response.headers.get("x-next-cursor");
    if (!cursor) break;
  }
  return out;
}
