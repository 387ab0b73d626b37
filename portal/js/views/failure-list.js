// The failures list of an integration's page: how many failures match the filters, the table a
// page at a time ("Load more"), and what to say when nothing is there or the filters are refused.
// It draws the selection it is given and passes the table's checkboxes on to it. `refresh()` (the
// page's auto-refresh) reloads the count and the first page in place: a failed refresh keeps the
// rows shown and says they may be out of date; a count that failed is "unknown", never a number.

import { api, userMessage } from "../api.js";
import { h, replace } from "../dom.js";
import { formatCount, plural, timeOfDay } from "../format.js";
import { errorBlock } from "../notices.js";
import { apiFilters, hasFilters, integrationHref } from "../route.js";
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
  let pages = 0; // pages shown; the auto-refresh holds while there is more than one (it would drop them)
  let shownAt = new Date(); // when the rows shown were loaded
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

  /** Resolves true when counted. */
  async function loadCount() {
    const asked = generation;
    if (filters.body_contains) {
      // A body search reads each failure's content: it is listed as found, never counted (issue 19).
      count = null;
      matchCount.textContent = "Searching message bodies: matches are listed as they are found; “Load more” searches further.";
      matchCount.dataset.state = "searching";
      return true;
    }
    if (count === null) matchCount.textContent = "Counting…";
    try {
      const answer = await api.countFailures(integration, apiFilters(filters));
      if (!isCurrent(asked)) return false;
      count = answer.count;
      renderShown();
      matchCount.textContent = hasFilters(filters)
        ? `${plural(count, "failure")} ${count === 1 ? "matches" : "match"} these filters.`
        : `${plural(count, "failure")} in total.`;
      matchCount.dataset.state = "counted";
      onCount(count);
      return true;
    } catch (error) {
      if (!isCurrent(asked)) return false;
      count = null;
      renderShown();
      matchCount.textContent = `How many failures ${hasFilters(filters) ? "match" : "there are"} is unknown: ${userMessage(error)}`;
      matchCount.dataset.state = "unknown";
      return false;
    }
  }

  /** The next page below the rows shown ("Load more"), or the first page. Resolves true when loaded. */
  async function loadPage() {
    const asked = generation;
    const first = cursor === null;
    loadMore.disabled = true;
    if (first) replace(status, h("p", { class: "muted" }, "Loading…"));
    let page;
    try {
      page = await api.failures(integration, apiFilters(filters), { limit: PAGE_SIZE, cursor });
    } catch (error) {
      if (!isCurrent(asked)) return false;
      const clear = hasFilters(filters) ? h("a", { href: integrationHref(integration) }, "Clear filters") : null;
      replace(status, errorBlock(error.status === 400 ? `The filters are not valid: ${error.message}` : `The failures could not be listed: ${userMessage(error)}`, clear));
      loadMore.disabled = false;
      return false;
    }
    if (!isCurrent(asked)) return false;
    if (first) table.setItems(page.items, selection.view());
    else table.appendItems(page.items, selection.view());
    pages = first ? 1 : pages + 1;
    showPage(page);
    return true;
  }

  function showPage(page) {
    loadedCount = table.loadedIds().length;
    cursor = page.next_cursor;
    loadMore.hidden = !page.next_cursor;
    loadMore.disabled = false;
    renderShown();
    replace(status, loadedCount > 0 ? null : emptyNote(integration, filters, Boolean(page.next_cursor)));
  }

  /** The count and the first page again, rows swapped only when the answer is there. */
  async function refresh() {
    const asked = generation;
    const [counted, page] = await Promise.all([
      loadCount(),
      api.failures(integration, apiFilters(filters), { limit: PAGE_SIZE }).then(
        (answer) => answer,
        (error) => error,
      ),
    ]);
    if (!isCurrent(asked)) return false;
    if (page instanceof Error) {
      const note = table.loadedIds().length
        ? `Could not refresh the list: ${userMessage(page)} The rows below are as of ${timeOfDay(shownAt)}.`
        : `The failures could not be listed: ${userMessage(page)}`;
      replace(status, errorBlock(note));
      return false;
    }
    table.setItems(page.items, selection.view());
    pages = 1;
    shownAt = new Date();
    showPage(page);
    return counted;
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
      count = null;
      pages = 0;
      table.setItems([], selection.view());
      loadMore.hidden = true;
      shown.textContent = "";
      loadedCount = 0;
      shownAt = new Date();
      return Promise.all([loadCount(), loadPage()]).then((done) => done.every(Boolean));
    },
    refresh,
    /** Why an auto-refresh must wait now (it would move rows under the person), or null. */
    holdReason() {
      if (pages > 1) return "more pages are loaded";
      if (table.element.contains(document.activeElement)) return "you are in the list";
      return null;
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
