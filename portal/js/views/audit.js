// The audit trail: who changed a config, started, cancelled or finished a job, replayed recovery.
// Newest first, with the API's filters (integration, actor, action, time range) kept in the URL,
// so a view can be shared and reloaded; "Load more" follows the API's cursor.

import { api } from "../api.js";
import { h, replace, scrollRegion, uid } from "../dom.js";
import { isoToLocalInput, localInputToIso, timeElement } from "../format.js";
import { errorBlock } from "../notices.js";
import { AUDIT_ACTIONS, AUDIT_FILTER_KEYS, auditHref, integrationHref } from "../route.js";

const PAGE_SIZE = 50;
/** Details longer than this are cut on screen; the cell's tooltip holds them whole. */
const DETAIL_CHARS = 160;

export function mountAudit(main, route) {
  let filters = route.filters;
  let cursor = null;
  let generation = 0;
  let disposed = false;

  const form = createAuditFilters({ onApply: (next) => navigate(next) });
  const body = h("tbody", {});
  const table = h(
    "table",
    { "data-testid": "audit-table" },
    h("caption", { class: "visually-hidden" }, "Audit trail, newest first"),
    h(
      "thead",
      {},
      h(
        "tr",
        {},
        ["Time", "Who", "Action", "Integration", "Target", "Details"].map((label) => h("th", { scope: "col" }, label)),
      ),
    ),
    body,
  );
  const status = h("div", { "aria-live": "polite" });
  const loadMore = h("button", { type: "button", hidden: true, onclick: () => loadPage() }, "Load more");
  replace(
    main,
    h(
      "div",
      { class: "page-head" },
      h("h1", { tabindex: "-1" }, "Audit"),
      h("span", { class: "sub" }, "Who changed a configuration, started, cancelled or finished a job, or replayed recovery. Newest first."),
    ),
    h(
      "div",
      { class: "stack" },
      h("section", { class: "card", "aria-label": "Filters" }, form.element),
      h("section", { class: "card", "aria-labelledby": "audit-title" }, h("h2", { id: "audit-title" }, "Entries"), status, scrollRegion("Audit entries", table), h("div", { class: "toolbar" }, loadMore)),
    ),
  );
  document.title = "Audit · Rebound";

  function navigate(next) {
    const target = auditHref(next);
    if (target === window.location.hash) reload();
    else window.location.hash = target;
  }

  function reload() {
    generation += 1;
    cursor = null;
    body.replaceChildren();
    form.setFilters(filters);
    loadPage();
  }

  async function loadPage() {
    const asked = generation;
    loadMore.disabled = true;
    replace(status, h("p", { class: "muted" }, "Loading…"));
    let page;
    try {
      page = await api.audit(filters, { limit: PAGE_SIZE, cursor });
    } catch (error) {
      if (disposed || asked !== generation) return;
      // A 400 names the filter the server refused.
      const which = error.details?.parameter ? ` (${error.details.parameter})` : "";
      replace(status, errorBlock(`The audit trail could not be read${which}: ${error.message}`));
      loadMore.hidden = true;
      return;
    }
    if (disposed || asked !== generation) return;
    for (const entry of page.items) body.append(entryRow(entry));
    cursor = page.next_cursor;
    loadMore.hidden = !cursor;
    loadMore.disabled = false;
    replace(status, body.children.length === 0 ? h("p", { class: "empty", "data-testid": "audit-empty" }, "No entries match these filters.") : null);
  }

  reload();
  return {
    refresh: reload,
    update(next) {
      if (next.view !== "audit") return false;
      filters = next.filters;
      reload();
      return true;
    },
    destroy() {
      disposed = true;
    },
  };
}

function entryRow(entry) {
  const actor = entry.actor ?? {};
  const details = describeDetails(entry.details ?? {});
  return h(
    "tr",
    { dataset: { action: entry.action, actor: actor.name ?? "" } },
    h("td", { class: "time" }, timeElement(entry.at)),
    h("td", {}, h("span", { title: `${actor.id} (${actor.auth})` }, actor.name)),
    h("td", {}, h("span", { class: "badge" }, entry.action)),
    h("td", {}, entry.integration ? h("a", { href: integrationHref(entry.integration) }, entry.integration) : h("span", { class: "muted" }, "—")),
    h("td", {}, entry.target ? h("code", {}, entry.target) : h("span", { class: "muted" }, "—")),
    h("td", { class: "details", title: details }, details.length > DETAIL_CHARS ? `${details.slice(0, DETAIL_CHARS)}…` : details),
  );
}

/** {"state": "completed", "processed": 3} → "state: completed · processed: 3" (objects as JSON). */
function describeDetails(details) {
  return Object.entries(details)
    .filter(([, value]) => value !== null && value !== undefined)
    .map(([key, value]) => `${key}: ${typeof value === "object" ? JSON.stringify(value) : value}`)
    .join(" · ");
}

/** The audit filters as a form; applying it changes the URL. */
function createAuditFilters({ onApply }) {
  const inputs = {};

  function field(key, label, control, hint = null) {
    const id = uid(`audit-${key}`);
    control.id = id;
    control.name = key;
    control.dataset.filter = key;
    inputs[key] = control;
    const hintId = hint ? `${id}-hint` : null;
    if (hintId) control.setAttribute("aria-describedby", hintId);
    return h("div", { class: "field" }, h("label", { for: id }, label), control, hint ? h("span", { class: "hint", id: hintId }, hint) : null);
  }

  const clear = h("button", { type: "button", onclick: () => onApply({}) }, "Clear filters");
  const form = h(
    "form",
    { class: "filter-bar", role: "search", "aria-label": "Filter the audit trail", "data-testid": "audit-filters" },
    field("integration", "Integration", h("input", { type: "text", autocomplete: "off", spellcheck: "false" })),
    field("actor", "Who", h("input", { type: "text", autocomplete: "off", spellcheck: "false" }), "A name or an id, exactly"),
    field("action", "Action", h("select", {}, h("option", { value: "" }, "Any action"), AUDIT_ACTIONS.map((action) => h("option", { value: action }, action)))),
    field("from", "From", h("input", { type: "datetime-local", step: "1" }), "Your local time"),
    field("to", "To", h("input", { type: "datetime-local", step: "1" }), "Your local time"),
    h("div", { class: "buttons" }, h("button", { type: "submit", class: "primary" }, "Apply filters"), clear),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const filters = {};
    for (const key of AUDIT_FILTER_KEYS) {
      const raw = inputs[key].value.trim();
      const value = key === "from" || key === "to" ? localInputToIso(raw) : raw;
      if (value) filters[key] = value;
    }
    if (filters.from && filters.to && filters.from > filters.to) {
      inputs.to.setCustomValidity("“To” must not be before “From”.");
      inputs.to.reportValidity();
      return;
    }
    onApply(filters);
  });
  inputs.to.addEventListener("input", () => inputs.to.setCustomValidity(""));
  inputs.from.addEventListener("input", () => inputs.to.setCustomValidity(""));

  return {
    element: form,
    setFilters(filters) {
      for (const key of AUDIT_FILTER_KEYS) {
        const value = filters[key] ?? "";
        inputs[key].value = key === "from" || key === "to" ? isoToLocalInput(value) : value;
      }
      clear.disabled = !AUDIT_FILTER_KEYS.some((key) => filters[key]);
    },
  };
}
