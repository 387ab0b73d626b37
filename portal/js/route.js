// The URL is the state of the page: "#/" is the overview, "#/integrations/<id>?sender=x&q=y"
// an integration's failures with its filters, "#/integrations/<id>/settings" its settings,
// "#/audit?actor=x&action=y" the audit trail with its filters.
// Shared or reloaded, a URL shows the same view. Hashes not starting with "#/" (the skip
// link's "#main") are in-page anchors, not routes.

/** The filter bar's fields, in the API's query parameter names; `range` is the portal's own (see apiFilters). */
export const FILTER_KEYS = ["from", "to", "q", "sender", "receiver", "origin", "group", "ref", "body_contains", "range"];

/** Quick time ranges: the URL keeps the range ("range=1h"), so a shared or refreshed view slides with the clock. */
export const RANGES = [
  ["15m", "Last 15 min", 15 * 60],
  ["1h", "Last hour", 3600],
  ["24h", "Last 24 h", 24 * 3600],
  ["7d", "Last 7 days", 7 * 24 * 3600],
];

/** The filters as the API takes them: a quick range becomes `from` = now minus the range, at the time of asking. */
export function apiFilters(filters, now = Date.now()) {
  const { range, ...rest } = filters;
  const known = RANGES.find(([key]) => key === range);
  if (!known) return rest;
  return { ...rest, from: new Date(now - known[2] * 1000).toISOString().replace(/\.\d{3}Z$/, "Z") };
}

export const ORIGINS = ["endpoint", "engine", "ingest", "catastrophic", "config", "pickup"];

/** The audit page's filters, in the API's query parameter names. */
export const AUDIT_FILTER_KEYS = ["integration", "actor", "action", "from", "to"];

export const AUDIT_ACTIONS = ["config.put", "config.delete", "job.start", "job.finish", "job.cancel", "recovery.replay", "pickup.run", "integration.pause", "integration.resume", "alert_rule.put", "alert_rule.delete", "alert_rule.test", "failure_group.mute", "failure_group.unmute", "failure.edit_retry"];

export function isRoute(hash) {
  return hash === "" || hash === "#" || hash.startsWith("#/");
}

/** "#/integrations/demo?sender=shop" → {view: "integration", integration: "demo", filters: {sender: "shop"}} */
export function parseRoute(hash) {
  const text = hash.replace(/^#\/?/, "");
  const [path, query = ""] = splitOnce(text, "?");
  const parts = path.split("/").filter(Boolean).map(safeDecode);
  const filters = filtersFrom(new URLSearchParams(query));
  if (parts.length === 0) return { view: "overview" };
  if (parts.length === 1 && parts[0] === "alerts") return { view: "alerts" };
  if (parts[0] === "audit" && parts.length === 1) return { view: "audit", filters: auditFiltersFrom(new URLSearchParams(query)) };
  if (parts[0] === "integrations" && parts.length === 2) return { view: "integration", integration: parts[1], filters };
  if (parts[0] === "integrations" && parts.length === 3 && parts[2] === "settings") {
    return { view: "settings", integration: parts[1] };
  }
  return { view: "not-found", path };
}

export function filtersFrom(params) {
  const filters = {};
  for (const key of FILTER_KEYS) {
    const value = params.get(key);
    if (value) filters[key] = value;
  }
  return filters;
}

export function auditFiltersFrom(params) {
  const filters = {};
  for (const key of AUDIT_FILTER_KEYS) {
    const value = params.get(key);
    if (value) filters[key] = value;
  }
  return filters;
}

export function auditHref(filters = {}) {
  const query = new URLSearchParams();
  for (const key of AUDIT_FILTER_KEYS) if (filters[key]) query.set(key, filters[key]);
  const suffix = query.toString();
  return `#/audit${suffix ? `?${suffix}` : ""}`;
}

export function overviewHref() {
  return "#/";
}

export function integrationHref(integration, filters = {}) {
  const query = new URLSearchParams();
  for (const key of FILTER_KEYS) if (filters[key]) query.set(key, filters[key]);
  const suffix = query.toString();
  return `#/integrations/${encodeURIComponent(integration)}${suffix ? `?${suffix}` : ""}`;
}

export function alertsHref() {
  return "#/alerts";
}

export function settingsHref(integration) {
  return `#/integrations/${encodeURIComponent(integration)}/settings`;
}

export function hasFilters(filters) {
  return FILTER_KEYS.some((key) => filters[key]);
}

function splitOnce(text, separator) {
  const index = text.indexOf(separator);
  return index < 0 ? [text] : [text.slice(0, index), text.slice(index + 1)];
}

function safeDecode(part) {
  try {
    return decodeURIComponent(part);
  } catch {
    return part;
  }
}
