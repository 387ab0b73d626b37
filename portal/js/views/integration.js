// An integration's failures page: filter bar, selection and Retry/Delete, the failures table
// with "load more", failure groups, and the job cards. The filters live in the URL; when only
// they change the page updates in place (keeping focus) instead of being rebuilt.

import { api } from "../api.js";
import { confirmAction } from "../dialogs.js";
import { h, replace, uid } from "../dom.js";
import { formatCount, plural } from "../format.js";
import { errorBlock, notify, notifyError } from "../notices.js";
import { hasFilters, integrationHref, overviewHref, settingsHref } from "../route.js";
import { openFailureDetail } from "./detail.js";
import { createFailuresTable } from "./failures-table.js";
import { createFilterBar } from "./filters.js";
import { createGroupsPanel } from "./groups.js";
import { createJobsPanel, describeSelection } from "./jobs.js";

/** Rows per "page" of the table: about two screens; "Load more" adds as many again. */
const PAGE_SIZE = 25;
/** The jobs API takes at most this many ids; beyond it "Select all messages" with a filter is the way. */
const MAX_IDS = 1000;
const ACTION_LABELS = { retry: "Retry", delete: "Delete" };

export function mountIntegration(main, route) {
  const integration = route.integration;
  const state = {
    filters: route.filters,
    cursor: null,
    loadedCount: 0,
    count: null, // failures matching the filters (what "select all" takes)
    selected: new Set(),
    selectAll: false,
    activeJob: null,
    conflict: null, // the 409 we were answered, until that job ends
    generation: 0, // bumps on every reload, so a late answer for old filters is dropped
  };
  let disposed = false;

  // --- parts -----------------------------------------------------------------------------

  const title = h("h1", { tabindex: "-1" }, integration);
  const subtitle = h("span", { class: "sub" });
  const filterBar = createFilterBar({ onApply: (filters) => navigate(filters) });
  const groupsPanel = createGroupsPanel({ onPick: (group) => navigate({ ...state.filters, group: group ?? undefined }) });
  const jobsPanel = createJobsPanel(integration, {
    onActiveChange: (job) => {
      state.activeJob = job;
      if (!job) state.conflict = null;
      renderActions();
    },
    onFinished: (job) => jobFinished(job),
  });
  const table = createFailuresTable({
    onToggle: (id, checked) => {
      if (checked) state.selected.add(id);
      else state.selected.delete(id);
      syncSelection();
    },
    onToggleLoaded: (checked) => {
      for (const id of table.loadedIds()) {
        if (checked) state.selected.add(id);
        else state.selected.delete(id);
      }
      syncSelection();
    },
    onOpen: (failure) => openFailureDetail(integration, failure),
  });

  const matchCount = h("p", { class: "muted", "data-testid": "match-count", "aria-live": "polite" });
  const selectAllToggle = h("input", {
    type: "checkbox",
    role: "switch",
    "data-testid": "select-all",
    onchange: (event) => setSelectAll(event.target.checked),
  });
  const selectionSummary = h("span", { class: "selection-summary", "data-testid": "selection-summary", "aria-live": "polite" });
  const why = h("p", { class: "why", id: uid("why"), "data-testid": "why-disabled" });
  const retryButton = h("button", { type: "button", class: "primary", "aria-describedby": why.id, onclick: () => startJob("retry") }, "Retry");
  const deleteButton = h("button", { type: "button", class: "danger", "aria-describedby": why.id, onclick: () => startJob("delete") }, "Delete");
  const conflictBox = h("div", {});
  const listStatus = h("div", {});
  const loadMore = h("button", { type: "button", hidden: true, onclick: () => loadPage() }, "Load more");
  const shown = h("span", { "data-testid": "shown-count" });

  replace(
    main,
    h(
      "nav",
      { class: "breadcrumb", "aria-label": "Breadcrumb" },
      h("ol", {}, h("li", {}, h("a", { href: overviewHref() }, "Failures")), h("li", { "aria-current": "page" }, integration)),
    ),
    h(
      "div",
      { class: "page-head" },
      title,
      subtitle,
      h(
        "div",
        { class: "actions" },
        h("a", { class: "button", href: settingsHref(integration) }, "Settings"),
        h("button", { type: "button", onclick: () => reloadAll() }, "Refresh"),
      ),
    ),
    h(
      "div",
      { class: "layout" },
      h(
        "div",
        { class: "stack" },
        jobsPanel.element,
        h("section", { class: "card", "aria-label": "Filters" }, filterBar.element),
        h(
          "section",
          { class: "card", "aria-labelledby": "failures-title" },
          h("h2", { id: "failures-title" }, "Failures"),
          matchCount,
          h(
            "div",
            { class: "action-bar", role: "group", "aria-label": "Selection and actions" },
            h("label", { class: "switch" }, selectAllToggle, "Select all messages"),
            selectionSummary,
            h("div", { class: "buttons" }, retryButton, deleteButton),
            why,
          ),
          conflictBox,
          listStatus,
          table.element,
          h("div", { class: "table-foot" }, loadMore, shown),
        ),
      ),
      h("div", { class: "side" }, groupsPanel.element),
    ),
  );

  // --- data ------------------------------------------------------------------------------

  async function loadConfig() {
    try {
      const config = await api.integration(integration);
      if (disposed) return;
      title.textContent = config.name || integration;
      const parts = [config.name && config.name !== integration ? integration : null];
      if (config.sender || config.receiver) parts.push(`${config.sender || "?"} → ${config.receiver || "?"}`);
      subtitle.textContent = parts.filter(Boolean).join(" · ");
      document.title = `${config.name || integration} · Failures · Rebound`;
    } catch {
      subtitle.textContent = "no configuration"; // e.g. `_unknown`: failures without an integration
    }
  }

  async function loadGroups() {
    try {
      const data = await api.groups(integration);
      if (disposed) return;
      groupsPanel.render(data.items, state.filters.group);
      filterBar.setGroups(data.items);
    } catch (error) {
      if (!disposed) groupsPanel.showError(error.message);
    }
  }

  async function loadCount() {
    const generation = state.generation;
    state.count = null;
    matchCount.textContent = "Counting…";
    try {
      const { count } = await api.countFailures(integration, state.filters);
      if (disposed || generation !== state.generation) return;
      state.count = count;
      renderShown();
      matchCount.textContent = hasFilters(state.filters)
        ? `${plural(count, "failure")} ${count === 1 ? "matches" : "match"} these filters.`
        : `${plural(count, "failure")} in total.`;
    } catch (error) {
      if (!disposed && generation === state.generation) matchCount.textContent = `Could not count: ${error.message}`;
    }
    renderActions();
  }

  async function loadPage() {
    const generation = state.generation;
    const first = state.cursor === null;
    loadMore.disabled = true;
    if (first) replace(listStatus, h("p", { class: "muted" }, "Loading…"));
    let page;
    try {
      page = await api.failures(integration, state.filters, { limit: PAGE_SIZE, cursor: state.cursor });
    } catch (error) {
      if (disposed || generation !== state.generation) return;
      const clear = hasFilters(state.filters) ? h("a", { href: integrationHref(integration) }, "Clear filters") : null;
      replace(listStatus, errorBlock(error.status === 400 ? `The filters are not valid: ${error.message}` : error.message, clear));
      loadMore.disabled = false;
      return;
    }
    if (disposed || generation !== state.generation) return;
    const selection = selectionView();
    if (first) table.setItems(page.items, selection);
    else table.appendItems(page.items, selection);
    state.loadedCount = table.loadedIds().length;
    state.cursor = page.next_cursor;
    loadMore.hidden = !page.next_cursor;
    loadMore.disabled = false;
    renderShown();
    if (state.loadedCount === 0 && page.next_cursor) {
      // A text search scans a bounded number of rows per request: none matched yet, more remain.
      replace(listStatus, h("p", { class: "empty" }, "No match in the failures searched so far; “Load more” searches further."));
    } else if (state.loadedCount === 0) {
      replace(
        listStatus,
        hasFilters(state.filters)
          ? h("p", { class: "empty" }, "No failures match these filters. ", h("a", { href: integrationHref(integration) }, "Clear filters"))
          : h("p", { class: "empty" }, "No failures for this integration."),
      );
    } else {
      replace(listStatus);
    }
  }

  function renderShown() {
    if (!state.loadedCount) {
      shown.textContent = "";
      return;
    }
    const of = state.count !== null && state.count >= state.loadedCount ? ` of ${formatCount(state.count)}` : "";
    shown.textContent = `Showing ${formatCount(state.loadedCount)}${of}`;
  }

  /** New filters or fresh data: first page, count and selection start over. */
  function reloadList() {
    state.generation += 1;
    state.cursor = null;
    state.selected.clear();
    state.selectAll = false;
    selectAllToggle.checked = false;
    table.setItems([], selectionView());
    loadMore.hidden = true;
    shown.textContent = "";
    state.loadedCount = 0;
    loadCount();
    loadPage();
    renderActions();
  }

  function reloadAll() {
    loadConfig();
    loadGroups();
    jobsPanel.load();
    reloadList();
  }

  // --- selection and jobs ----------------------------------------------------------------

  function selectionView() {
    return { isSelected: (id) => state.selected.has(id), allSelected: state.selectAll };
  }

  function setSelectAll(on) {
    state.selectAll = on;
    syncSelection();
  }

  function syncSelection() {
    table.sync(selectionView());
    renderActions();
  }

  function selectedCount() {
    return state.selectAll ? state.count : state.selected.size;
  }

  /** What the job request selects: every id, the frozen filter, or everything. */
  function jobSelection() {
    if (!state.selectAll) return { ids: [...state.selected] };
    return hasFilters(state.filters) ? { filter: { ...state.filters } } : { all: true };
  }

  function renderActions() {
    const count = selectedCount();
    if (state.selectAll) {
      selectionSummary.textContent =
        count === null ? "Counting the matching failures…" : `All ${plural(count, "failure")}${hasFilters(state.filters) ? " matching the filters" : ""} selected`;
    } else {
      selectionSummary.textContent = count ? `${plural(count, "failure")} selected` : "Nothing selected";
    }
    let reason = "";
    const job = state.activeJob;
    if (job) {
      reason = `A ${job.action} job is ${job.state}${state.conflict ? " (started elsewhere)" : ""}. Only one job per integration runs at a time: wait for it to finish or cancel it.`;
    } else if (state.selectAll && count === null) {
      reason = "Counting the failures to select…";
    } else if (!count) {
      reason = state.selectAll ? "No failures match: nothing to retry or delete." : "Select failures in the table, or turn on “Select all messages”.";
    } else if (!state.selectAll && count > MAX_IDS) {
      reason = `More than ${formatCount(MAX_IDS)} rows are selected; use “Select all messages” (with filters) instead.`;
    }
    why.textContent = reason;
    retryButton.disabled = deleteButton.disabled = Boolean(reason);
    if (!job) replace(conflictBox);
  }

  async function startJob(action) {
    const count = selectedCount();
    const selection = jobSelection();
    const label = ACTION_LABELS[action];
    const confirmed = await confirmAction({
      title: `${label} ${plural(count, "failure")}?`,
      message: [
        h(
          "p",
          { "data-testid": "confirm-message" },
          action === "retry"
            ? `${plural(count, "message")} will be sent to the receiver again, and their failures removed once they are back on the queue. Any that fail again come back as new failures.`
            : `${plural(count, "failure")} and ${count === 1 ? "its" : "their"} content will be deleted. This cannot be undone.`,
        ),
        h("p", { class: "muted" }, `Selection: ${describeSelection(selection)}.`),
      ],
      confirmLabel: `${label} ${plural(count, "failure")}`,
      danger: action === "delete",
    });
    if (!confirmed || disposed) return;
    retryButton.disabled = deleteButton.disabled = true;
    try {
      const job = await api.startJob(integration, action, selection);
      if (disposed) return;
      notify(`${label} job started for ${plural(count, "failure")}.`);
      state.selected.clear();
      state.selectAll = false;
      selectAllToggle.checked = false;
      table.sync(selectionView());
      jobsPanel.track(job);
    } catch (error) {
      if (disposed) return;
      if (error.status === 409) {
        showConflict(error.details.active_job_id);
      } else {
        notifyError(`The ${action} job was not started: ${error.message}`);
        renderActions();
      }
    }
  }

  function showConflict(activeJobId) {
    state.conflict = activeJobId ?? true;
    replace(
      conflictBox,
      h(
        "div",
        { class: "alert warn", role: "alert", "data-testid": "job-conflict" },
        h(
          "span",
          {},
          "Not started: another job is already active for this integration (started elsewhere). ",
          "Only one job per integration can run at a time. It is shown under Jobs; wait for it or cancel it.",
        ),
      ),
    );
    if (activeJobId) jobsPanel.trackById(activeJobId);
    else jobsPanel.load();
  }

  function jobFinished(job) {
    const label = ACTION_LABELS[job.action] ?? job.action;
    const summary = `${label} job ${job.state}: ${formatCount(job.succeeded)} succeeded, ${formatCount(job.failed)} failed.`;
    if (job.state === "completed") notify(summary);
    else notify(summary, job.state === "failed" ? "error" : "warn");
    // Its failures are gone (or some came back): show the list as it is now.
    loadGroups();
    reloadList();
  }

  function navigate(filters) {
    const target = integrationHref(integration, filters);
    if (target === window.location.hash) reloadList(); // same filters: the URL would not change
    else window.location.hash = target;
  }

  // --- start -----------------------------------------------------------------------------

  filterBar.setFilters(state.filters);
  document.title = `${integration} · Failures · Rebound`;
  reloadAll();

  return {
    /** Same integration, other filters: update in place. */
    update(next) {
      if (next.view !== "integration" || next.integration !== integration) return false;
      state.filters = next.filters;
      filterBar.setFilters(state.filters);
      loadGroups();
      reloadList();
      return true;
    },
    destroy() {
      disposed = true;
      jobsPanel.destroy();
    },
  };
}
