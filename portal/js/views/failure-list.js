// The failures list of an integration's page: how many failures match the filters, the table a
// page at a time ("Load more"), and what to say when nothing is there or the filters are refused.
// It draws the selection it is given and passes the table's checkboxes on to it.

import { api } from "../api.js";
import { h, replace } from "../dom.js";
import { formatCount, plural } from "../format.js";
import { errorBlock } from "../notices.js";
import { hasFilters, integrationHref } from "../route.js";
import { createFailuresTable } from "./failures-table.js";

/** Rows per "page" of the table: about two screens; "Load more" adds as many again. */
const PAGE_SIZE = 25;

/** `onCount(count)` fires when the failures matching the filters have been counted. */
export function createFailureList(integration, { selection, onOpen, onCount, selectable = true }) {
  let filters = {};
  let cursor = null; // where the next page starts; null: at the first
  let loadedCount = 0;
  let count = null; // failures matching the filters; null until counted
  let generation = 0; // bumps on every reload, so a late answer for old filters is dropped
  let disposed = false;

  const table = createFailuresTable({
    onToggle: (id, checked) => selection.toggle(id, checked),
    onToggleLoaded: (checked) => selection.toggleMany(table.loadedIds(), checked),
    onOpen,
    selectable,
  });
  const matchCount = h("p", { class: "muted", "data-testid": "match-count", "aria-live": "polite" });
  const status = h("div", {});
  const loadMore = h("button", { type: "button", hidden: true, onclick: () => loadPage() }, "Load more");
  const shown = h("span", { "data-testid": "shown-count" });
  const isCurrent = (asked) => !disposed && asked === generation;

  async function loadCount() {
    const asked = generation;
    count = null;
    if (filters.body_contains) {
      // A body search reads each failure's content: it is listed as found, never counted (issue 19).
      matchCount.textContent = "Searching message bodies: matches are listed as they are found; “Load more” searches further.";
      return;
    }
    matchCount.textContent = "Counting…";
    try {
      const answer = await api.countFailures(integration, filters);
      if (!isCurrent(asked)) return;
      count = answer.count;
      renderShown();
      matchCount.textContent = hasFilters(filters)
        ? `${plural(count, "failure")} ${count === 1 ? "matches" : "match"} these filters.`
        : `${plural(count, "failure")} in total.`;
      onCount(count);
    } catch (error) {
      if (isCurrent(asked)) matchCount.textContent = `Could not count: ${error.message}`;
    }
  }

  async function loadPage() {
    const asked = generation;
    const first = cursor === null;
    loadMore.disabled = true;
    if (first) replace(status, h("p", { class: "muted" }, "Loading…"));
    let page;
    try {
      page = await api.failures(integration, filters, { limit: PAGE_SIZE, cursor });
    } catch (error) {
      if (!isCurrent(asked)) return;
      const clear = hasFilters(filters) ? h("a", { href: integrationHref(integration) }, "Clear filters") : null;
      replace(status, errorBlock(error.status === 400 ? `The filters are not valid: ${error.message}` : error.message, clear));
      loadMore.disabled = false;
      return;
    }
    if (!isCurrent(asked)) return;
    if (first) table.setItems(page.items, selection.view());
    else table.appendItems(page.items, selection.view());
    loadedCount = table.loadedIds().length;
    cursor = page.next_cursor;
    loadMore.hidden = !page.next_cursor;
    loadMore.disabled = false;
    renderShown();
    replace(status, loadedCount > 0 ? null : emptyNote(integration, filters, Boolean(page.next_cursor)));
  }

  function renderShown() {
    if (!loadedCount) {
      shown.textContent = "";
      return;
    }
    const of = count !== null && count >= loadedCount ? ` of ${formatCount(count)}` : "";
    shown.textContent = `Showing ${formatCount(loadedCount)}${of}`;
  }

  return {
    /** Placed by the page: the count above the action bar, the rest below it. */
    parts: { matchCount, status, table: table.element, foot: h("div", { class: "table-foot" }, loadMore, shown) },
    /** New filters or fresh data: the count and the first page start over. */
    reload(nextFilters) {
      filters = nextFilters;
      generation += 1;
      cursor = null;
      table.setItems([], selection.view());
      loadMore.hidden = true;
      shown.textContent = "";
      loadedCount = 0;
      loadCount();
      loadPage();
    },
    /** Reflect a changed selection in the rows drawn, in place (focus stays). */
    showSelection: () => table.sync(selection.view()),
    destroy() {
      disposed = true;
    },
  };
}

/** What an empty list says: more to search, nothing matching the filters, or nothing at all. */
function emptyNote(integration, filters, moreToSearch) {
  if (moreToSearch) {
    // A text search scans a bounded number of rows per request: none matched yet, more remain.
    return h("p", { class: "empty" }, "No match in the failures searched so far; “Load more” searches further.");
  }
  return hasFilters(filters)
    ? h("p", { class: "empty" }, "No failures match these filters. ", h("a", { href: integrationHref(integration) }, "Clear filters"))
    : h("p", { class: "empty" }, "No failures for this integration.");
}
