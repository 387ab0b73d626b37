// The filter bar: quick time ranges, from/to (in the zone times are shown in, named in the hint),
// failure message text, sender, receiver, origin and failure group. Applying it changes the URL (so
// the view can be shared and reloaded); the page reacts to that. Below 600 px the bar folds behind a
// "Filters" button that says how many are active, so the list is on the first screen.

import { h, uid } from "../dom.js";
import { formatCount, isoToLocalInput, localInputToIso, onZoneChange, zoneName } from "../format.js";
import { FILTER_KEYS, ORIGINS, RANGES } from "../route.js";

const GROUP_LABEL_CHARS = 60;

export function groupLabel(group) {
  const reason = group.sample_reason.length > GROUP_LABEL_CHARS ? `${group.sample_reason.slice(0, GROUP_LABEL_CHARS)}…` : group.sample_reason;
  const status = group.status_code ? ` ${group.status_code}` : "";
  return `${group.origin}${status}: ${reason}`;
}

function zoneHint() {
  return `In ${zoneName()}`;
}

export function createFilterBar({ onApply }) {
  const inputs = {};
  let groups = [];

  function field(key, label, control, { hint = null, wide = false } = {}) {
    const id = uid(`filter-${key}`);
    control.id = id;
    control.name = key;
    control.dataset.filter = key;
    inputs[key] = control;
    const hintId = hint ? `${id}-hint` : null;
    if (hintId) control.setAttribute("aria-describedby", hintId);
    return h(
      "div",
      { class: `field${wide ? " wide" : ""}` },
      h("label", { for: id }, label),
      control,
      hint ? h("span", { class: "hint", id: hintId }, hint) : null,
    );
  }

  const group = h("select", {});
  const rangeButtons = new Map(); // range key → its button
  const clear = h("button", { type: "button", onclick: () => onApply({}) }, "Clear filters");
  const form = h(
    "form",
    { class: "filter-bar", role: "search", "aria-label": "Filter failures", "data-testid": "filter-bar" },
    h(
      "div",
      { class: "quick-ranges", role: "group", "aria-label": "Quick time range" },
      h("span", { class: "label", "aria-hidden": "true" }, "Time"),
      RANGES.map(([key, label]) => {
        const button = h("button", { type: "button", class: "small", "aria-pressed": "false", dataset: { range: key }, onclick: () => applyRange(key) }, label);
        rangeButtons.set(key, button);
        return button;
      }),
    ),
    field("from", "From", h("input", { type: "datetime-local", step: "1" }), { hint: zoneHint() }),
    field("to", "To", h("input", { type: "datetime-local", step: "1" }), { hint: zoneHint() }),
    field("sender", "Sender", h("input", { type: "text", autocomplete: "off" })),
    field("receiver", "Receiver", h("input", { type: "text", autocomplete: "off" })),
    field("q", "Failure message", h("input", { type: "search", placeholder: "text in the reason", autocomplete: "off" }), { wide: true }),
    field(
      "origin",
      "Origin",
      h("select", {}, h("option", { value: "" }, "Any origin"), ORIGINS.map((origin) => h("option", { value: origin }, origin))),
    ),
    field("group", "Failure group", group),
    h("div", { class: "buttons" }, h("button", { type: "submit", class: "primary" }, "Apply filters"), clear),
  );

  // Folding (below 600 px only; CSS hides the toggle above that).
  const formId = uid("filter-form");
  form.id = formId;
  const toggleCount = h("span", { class: "count", "data-testid": "filters-active" });
  const toggle = h(
    "button",
    { type: "button", class: "filters-toggle", "aria-expanded": "false", "aria-controls": formId, "data-testid": "filters-toggle", onclick: () => setOpen(toggle.getAttribute("aria-expanded") !== "true") },
    "Filters",
    toggleCount,
  );
  const element = h("div", { class: "filters", dataset: { open: "false" } }, toggle, form);
  function setOpen(open) {
    toggle.setAttribute("aria-expanded", String(open));
    element.dataset.open = String(open);
  }

  const unsubscribe = onZoneChange(() => {
    for (const key of ["from", "to"]) {
      const hint = document.getElementById(`${inputs[key].id}-hint`);
      if (hint) hint.textContent = zoneHint();
    }
    setFilters(current); // the inputs show wall time in the zone shown
  });

  /** A quick range replaces from/to; choosing the active one again clears it. */
  function applyRange(key) {
    const { from, to, range, ...rest } = read();
    onApply(range === key ? rest : { ...rest, range: key });
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const filters = read();
    if (filters.from && filters.to && filters.from > filters.to) {
      inputs.to.setCustomValidity("“To” must not be before “From”.");
      inputs.to.reportValidity();
      return;
    }
    onApply(filters);
  });
  inputs.to.addEventListener("input", () => inputs.to.setCustomValidity(""));
  inputs.from.addEventListener("input", () => inputs.to.setCustomValidity(""));

  function read() {
    const filters = {};
    for (const key of FILTER_KEYS) {
      if (key === "range") continue;
      if (!inputs[key]) {
        if (current[key]) filters[key] = current[key]; // set elsewhere (the find box's `ref`): kept as it is
        continue;
      }
      const raw = inputs[key].value.trim();
      const value = key === "from" || key === "to" ? localInputToIso(raw) : raw;
      if (value) filters[key] = value;
    }
    // The quick range stays until from/to are typed (they replace it) or it is pressed again.
    if (current.range && !filters.from && !filters.to) filters.range = current.range;
    return filters;
  }

  function renderGroupOptions(selected) {
    const options = [h("option", { value: "" }, "Any group")];
    for (const item of groups) options.push(h("option", { value: item.group }, `${groupLabel(item)} (${formatCount(item.count)})`));
    if (selected && !groups.some((item) => item.group === selected)) {
      options.push(h("option", { value: selected }, `Group ${selected}`)); // from a shared URL; no longer counted
    }
    group.replaceChildren(...options);
    group.value = selected || "";
  }

  function setFilters(filters) {
    for (const [key, button] of rangeButtons) button.setAttribute("aria-pressed", String(filters.range === key));
    const active = FILTER_KEYS.filter((key) => filters[key]).length;
    toggleCount.textContent = active ? ` · ${active} active` : "";
    for (const key of FILTER_KEYS) {
      if (key === "group" || key === "range" || !inputs[key]) continue;
      const value = filters[key] ?? "";
      inputs[key].value = key === "from" || key === "to" ? isoToLocalInput(value) : value;
    }
    renderGroupOptions(filters.group ?? "");
    clear.disabled = !FILTER_KEYS.some((key) => filters[key]);
  }

  let current = {};
  return {
    element,
    destroy: unsubscribe,
    setFilters(filters) {
      current = filters;
      setFilters(filters);
    },
    setGroups(items) {
      groups = items;
      renderGroupOptions(current.group ?? "");
    },
  };
}
