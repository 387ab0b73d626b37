// The Rebound HTTP API, one function per route. Where people sign in (entra, dev) the browser's
// session cookie goes with every call on its own; in key mode every call carries the function key.
// A 401 tells the app to sign in (or to ask for the key) again. Errors arrive as ApiError with the
// API's {"error": {"code", "message", "details"}} unpacked; a 403 names `details.required_role`.
//
// What a person reads: a 4xx keeps the server's message (it names the field or the rule at fault);
// anything else (5xx, no answer, no network) gets a plain sentence chosen by its code, because the
// server's text there names storage internals ("query uxfailuresummary: no answer within 10 s").
// The server's own text stays on `error.serverMessage` for whoever debugs.
//
// An outage (no answer, a timeout, 502/503/504) is also reported to outage.js, which shows the
// banner and retries the failed GETs with backoff until they answer.

import { forgetKey, getKey } from "./key.js";
import { signsIn } from "./session.js";

// The page lives at <prefix>/portal, so the API prefix is the page's directory ("/api/").
const API_BASE = new URL(".", window.location.href);

/** A call without an answer by then counts as an outage. The server bounds each storage call at
 * STORAGE_TIMEOUT_S (10 s) and answers 503 past it; a route makes a few in a row at most. */
export const REQUEST_TIMEOUT_MS = 25_000;

/** Plain sentences for errors whose server text is not for people (5xx, no answer). */
const PLAIN_MESSAGES = {
  unreachable: "The Rebound server could not be reached (no network, or the server is down).",
  timeout: "The Rebound server did not answer in time.",
  storage_unavailable: "Rebound's storage is not answering right now.",
  storage_error: "Rebound's storage is not answering right now.",
  entity_too_large: "This is too large for Rebound to store.",
  gateway: "The Rebound server is not answering right now (the gateway in front of it gave up).",
  internal: "The Rebound server failed to do this (an internal error; the function logs have the details).",
};

/** Statuses that mean "the service is not there right now", not "you asked wrongly". */
const OUTAGE_STATUSES = new Set([0, 502, 503, 504]);

export class ApiError extends Error {
  constructor(status, body, fallback, code = "") {
    const error = body && typeof body === "object" ? body.error ?? {} : {};
    const errorCode = error.code || code;
    const serverMessage = error.message || fallback || `HTTP ${status}`;
    super(plainMessage(status, errorCode, serverMessage));
    this.name = "ApiError";
    this.status = status;
    this.code = errorCode;
    this.serverMessage = serverMessage;
    this.details = error.details ?? {};
  }

  /** True when the service (or its storage) did not answer: worth retrying by itself, and what the banner is for. */
  get outage() {
    return OUTAGE_STATUSES.has(this.status) || this.code === "storage_unavailable";
  }
}

function plainMessage(status, code, serverMessage) {
  if (status >= 400 && status < 500 && code !== "concurrency_conflict") return serverMessage;
  if (status === 409) return "Someone changed this at the same time; reload and try again.";
  if (PLAIN_MESSAGES[code]) return PLAIN_MESSAGES[code];
  if (status === 502 || status === 504) return PLAIN_MESSAGES.gateway;
  if (status === 503) return PLAIN_MESSAGES.storage_unavailable;
  if (status === 0) return PLAIN_MESSAGES.unreachable;
  return PLAIN_MESSAGES.internal;
}

/** The message for people, for any error a view caught (an ApiError or a bug of ours). */
export function userMessage(error) {
  return error instanceof ApiError ? error.message : PLAIN_MESSAGES.internal;
}

/** Told about every outage and every answer, so the banner knows when to show and when to go. */
let outageWatcher = { failed() {}, answered() {} };

export function setOutageWatcher(watcher) {
  outageWatcher = watcher;
}

let onUnauthorized = () => {};

/** The app's reaction to a 401: a sign-in that lapsed, or a rejected key (show the key form). */
export function setUnauthorizedHandler(handler) {
  onUnauthorized = handler;
}

function url(path, params = {}) {
  const target = new URL(path.replace(/^\//, ""), API_BASE);
  for (const [name, value] of Object.entries(params)) {
    if (value !== null && value !== undefined && value !== "") target.searchParams.set(name, value);
  }
  return target;
}

async function request(method, path, { params, body, quiet401 = false, timeoutMs = REQUEST_TIMEOUT_MS } = {}) {
  const headers = { Accept: "application/json" };
  if (!signsIn() && getKey()) headers["x-functions-key"] = getKey();
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const target = url(path, params);
  const retry = method === "GET" ? () => request(method, path, { params, quiet401, timeoutMs }) : null;
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), timeoutMs);
  let response;
  let text;
  try {
    response = await fetch(target, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: "no-store",
      signal: abort.signal,
    });
    text = await response.text();
  } catch (cause) {
    const timedOut = abort.signal.aborted;
    const error = new ApiError(0, null, timedOut ? `no answer within ${timeoutMs / 1000} s` : cause.message, timedOut ? "timeout" : "unreachable");
    outageWatcher.failed(error, { key: `${method} ${target}`, retry });
    throw error;
  } finally {
    clearTimeout(timer);
  }
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (response.status === 401) {
    const error = new ApiError(401, data, signsIn() ? "You are not signed in (or your sign-in has expired)." : "The function key was not accepted.");
    if (quiet401) throw error;
    if (!signsIn()) forgetKey();
    onUnauthorized(error);
    throw error;
  }
  const error = response.ok ? null : new ApiError(response.status, data, `${method} ${path} answered ${response.status}`);
  if (error?.outage) {
    outageWatcher.failed(error, { key: `${method} ${target}`, retry });
    throw error;
  }
  outageWatcher.answered(`${method} ${target}`);
  if (error) throw error;
  return data;
}

/** A file the API builds (the export): the body as a Blob and the answer's headers. */
async function download(path, params) {
  const headers = {};
  if (!signsIn() && getKey()) headers["x-functions-key"] = getKey();
  let response;
  try {
    response = await fetch(url(path, params), { headers, cache: "no-store" });
  } catch (cause) {
    throw new ApiError(0, null, `The server could not be reached (${cause.message}).`);
  }
  if (!response.ok) {
    let data = null;
    try {
      data = await response.json();
    } catch {
      data = null;
    }
    if (response.status === 401) onUnauthorized(new ApiError(401, data));
    throw new ApiError(response.status, data, `GET ${path} answered ${response.status}`);
  }
  return { blob: await response.blob(), headers: response.headers };
}

const segment = encodeURIComponent;
const integrationPath = (integration) => `integrations/${segment(integration)}`;

export const api = {
  /** How this deployment signs people in (anonymous). */
  config: () => request("GET", "portal/config", { quiet401: true }),
  /** Who is signed in; a 401 is the caller's to handle (it means: not signed in yet). */
  me: () => request("GET", "me", { quiet401: true }),
  audit: (filters, { limit = 50, cursor = null } = {}) => request("GET", "audit", { params: { ...filters, limit, cursor } }),

  overview: () => request("GET", "failures"),
  integrations: () => request("GET", "integrations"),
  integration: (integration) => request("GET", integrationPath(integration)),
  saveIntegration: (integration, config) => request("PUT", integrationPath(integration), { body: config }),

  failures: (integration, filters, { limit = 50, cursor = null } = {}) =>
    request("GET", `${integrationPath(integration)}/failures`, { params: { ...filters, limit, cursor } }),
  countFailures: (integration, filters) =>
    request("GET", `${integrationPath(integration)}/failures/count`, { params: filters }),
  failure: (integration, id) => request("GET", `${integrationPath(integration)}/failures/${segment(id)}`),
  groups: (integration) => request("GET", `${integrationPath(integration)}/failure-groups`),
  timeline: (integration, messageId, { limit = 500 } = {}) =>
    request("GET", `${integrationPath(integration)}/messages/${segment(messageId)}/timeline`, { params: { limit } }),
  facets: (integration) => request("GET", `${integrationPath(integration)}/failures/facets`),
  exportFailures: (integration, filters, format) =>
    download(`${integrationPath(integration)}/failures/export`, { ...filters, format }),
  editRetry: (integration, id, body) =>
    request("POST", `${integrationPath(integration)}/failures/${segment(id)}/edit-retry`, { body }),
  muteGroup: (integration, group, reason, until = null) =>
    request("POST", `${integrationPath(integration)}/failure-groups/${segment(group)}/mute`, { body: until ? { reason, until } : { reason } }),
  unmuteGroup: (integration, group) => request("POST", `${integrationPath(integration)}/failure-groups/${segment(group)}/unmute`),

  jobs: (integration) => request("GET", `${integrationPath(integration)}/jobs`),
  job: (integration, id) => request("GET", `${integrationPath(integration)}/jobs/${segment(id)}`),
  startJob: (integration, action, selection, target = null) =>
    request("POST", `${integrationPath(integration)}/jobs`, { body: target ? { action, selection, target } : { action, selection } }),
  cancelJob: (integration, id) => request("POST", `${integrationPath(integration)}/jobs/${segment(id)}/cancel`),

  pickup: (integration) => request("GET", `${integrationPath(integration)}/pickup`),
  runPickup: (integration) => request("POST", `${integrationPath(integration)}/pickup/run`),

  control: (integration) => request("GET", `${integrationPath(integration)}/control`),
  pause: (integration, reason) => request("POST", `${integrationPath(integration)}/pause`, { body: { reason } }),
  resume: (integration) => request("POST", `${integrationPath(integration)}/resume`),

  alertRules: () => request("GET", "alert-rules"),
  saveAlertRule: (id, rule) => request("PUT", `alert-rules/${segment(id)}`, { body: rule }),
  deleteAlertRule: (id) => request("DELETE", `alert-rules/${segment(id)}`),
  testAlertRule: (id) => request("POST", `alert-rules/${segment(id)}/test`),
  alerts: (limit = 50) => request("GET", "alerts", { params: { limit } }),

  recovery: () => request("GET", "recovery"),
  replay: () => request("POST", "recovery/replay"),

  metrics: () => request("GET", "metrics"),
  /** Whether every store answers (anonymous); 503 with the same report when one does not. */
  health: () => request("GET", "health"),
};
