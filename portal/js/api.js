// The Rebound HTTP API, one function per route. Where people sign in (entra, dev) the browser's
// session cookie goes with every call on its own; in key mode every call carries the function key.
// A 401 tells the app to sign in (or to ask for the key) again. Errors arrive as ApiError with the
// API's {"error": {"code", "message", "details"}} unpacked; a 403 names `details.required_role`.

import { forgetKey, getKey } from "./key.js";
import { signsIn } from "./session.js";

// The page lives at <prefix>/portal, so the API prefix is the page's directory ("/api/").
const API_BASE = new URL(".", window.location.href);

export class ApiError extends Error {
  constructor(status, body, fallback) {
    const error = body && typeof body === "object" ? body.error ?? {} : {};
    super(error.message || fallback || `HTTP ${status}`);
    this.name = "ApiError";
    this.status = status;
    this.code = error.code || "";
    this.details = error.details ?? {};
  }
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

async function request(method, path, { params, body, quiet401 = false } = {}) {
  const headers = { Accept: "application/json" };
  if (!signsIn() && getKey()) headers["x-functions-key"] = getKey();
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(url(path, params), {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: "no-store",
    });
  } catch (cause) {
    throw new ApiError(0, null, `The server could not be reached (${cause.message}).`);
  }
  const text = await response.text();
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
  if (!response.ok) throw new ApiError(response.status, data, `${method} ${path} answered ${response.status}`);
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
};
