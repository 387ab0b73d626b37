// What is selected on the failures page: single rows, or "Select all messages" (every failure
// matching the filters, loaded or not). It holds the selection and says what it is; the table
// draws it, the job actions act on it, and the page starts it over whenever the list does.

import { h } from "../dom.js";
import { plural } from "../format.js";
import { apiFilters, hasFilters } from "../route.js";

/** `onChange()` fires after every change: what is selected, or how many failures match. */
export function createSelection({ onChange }) {
  const selected = new Set(); // failure ids picked in the table
  let allMatching = false; // "Select all messages": every failure matching `filters`
  let filters = {};
  let matching = null; // how many failures match `filters`; null until counted

  const allSwitch = h("input", {
    type: "checkbox",
    role: "switch",
    "data-testid": "select-all",
    onchange: (event) => setAllMatching(event.target.checked),
  });
  const summary = h("span", { class: "selection-summary", "data-testid": "selection-summary", "aria-live": "polite" });

  function setAllMatching(on) {
    allMatching = on;
    changed();
  }

  function changed() {
    render();
    onChange();
  }

  /** How many failures are selected; null while "all matching" is still being counted. */
  function count() {
    return allMatching ? matching : selected.size;
  }

  function render() {
    const selectedCount = count();
    if (allMatching) {
      summary.textContent =
        selectedCount === null
          ? "Counting the matching failures…"
          : `All ${plural(selectedCount, "failure")}${hasFilters(filters) ? " matching the filters" : ""} selected`;
    } else {
      summary.textContent = selectedCount ? `${plural(selectedCount, "failure")} selected` : "Nothing selected";
    }
  }

  function clear() {
    selected.clear();
    allMatching = false;
    allSwitch.checked = false;
    changed();
  }

  function toggleMany(ids, on) {
    for (const id of ids) {
      if (on) selected.add(id);
      else selected.delete(id);
    }
    changed();
  }

  return {
    parts: { allSwitch: h("label", { class: "switch" }, allSwitch, "Select all messages"), summary },
    get allMatching() {
      return allMatching;
    },
    count,
    /** What the table needs to draw the selection. */
    view: () => ({ isSelected: (id) => selected.has(id), allSelected: allMatching }),
    /** What a job request selects: every id, the frozen filter, or everything. */
    request() {
      if (!allMatching) return { ids: [...selected] };
      // A quick range is frozen to its `from` now: the job selects what the person saw.
      return hasFilters(filters) ? { filter: apiFilters(filters) } : { all: true };
    },
    toggle: (id, on) => toggleMany([id], on),
    toggleMany,
    clear,
    /** New filters or fresh data: nothing selected, and the matching failures not yet counted. */
    startOver(nextFilters) {
      filters = nextFilters;
      matching = null;
      // A body search is not a selection a job can freeze: pick the rows found instead.
      allSwitch.disabled = Boolean(filters.body_contains);
      clear();
    },
    setMatching(total) {
      matching = total;
      changed();
    },
  };
}
