// An integration's failures page. This module lays the page out and wires its components; each
// keeps its own state and tells the page what happened through callbacks:
//   integration-head.js  breadcrumb, name, Settings and Refresh
//   jobs.js              the job cards, polling the active job
//   filters.js           the filter bar (the filters live in the URL)
//   failure-list.js      the match count, the failures table and "Load more"
//   selection.js         rows picked, or "Select all messages"
//   job-actions.js       Retry/Delete: why disabled, confirm, start, the 409 note
//   groups.js            failure groups, beside the list
//   pickup.js            the pickup source and its runs, "Pick up now" (hidden without a source)
//   control.js           paused or running, messages held, the circuit breaker; Pause (with a reason) and Resume
//   find-box.js          "Find a message" by message or correlation id (the `ref` filter)
//   suggestions.js       known senders and receivers for the filter bar
//   export-button.js     Export the matching failures (CSV, NDJSON)
//   failure-actions.js   Retry, Delete, Edit and retry in the detail dialog (operators)
//   group-mute.js        Mute/Unmute beside each failure group (operators)
//   ../refresh.js        auto-refresh every 15 s: list, count, groups, jobs; on hold while rows are selected
// A new part of the page is one more component: created here, placed in the layout below, and
// wired to the others through its callbacks. When only the filters change the page updates in
// place (keeping focus) instead of being rebuilt.

import { api, userMessage } from "../api.js";
import { h, replace } from "../dom.js";
import { createAutoRefresh } from "../refresh.js";
import { integrationHref } from "../route.js";
import { can, ROLES } from "../session.js";
import { openFailureDetail } from "./detail.js";
import { createFailureList } from "./failure-list.js";
import { createFilterBar } from "./filters.js";
import { createGroupsPanel } from "./groups.js";
import { createIntegrationHead } from "./integration-head.js";
import { announceFinished, createJobActions } from "./job-actions.js";
import { createJobsPanel } from "./jobs.js";
import { createControlPanel } from "./control.js";
import { createPickupPanel } from "./pickup.js";
import { createSelection } from "./selection.js";
import { createExportButton } from "./export-button.js";
import { createFailureActions } from "./failure-actions.js";
import { createFindBox } from "./find-box.js";
import { describeMute, muteControl } from "./group-mute.js";
import { attachSuggestions } from "./suggestions.js";

export function mountIntegration(main, route) {
  const integration = route.integration;
  let filters = route.filters; // the URL's; the components are told when they change
  const acts = can(ROLES.operator); // retry, delete and cancel are an operator's
  let disposed = false;

  const head = createIntegrationHead(integration, { onRefresh: () => refresh() });
  const filterBar = createFilterBar({ onApply: (next) => navigate(next) });
  const groupsPanel = createGroupsPanel({
    onPick: (group) => navigate({ ...filters, group: group ?? undefined }),
    extra: acts ? (group) => muteControl(integration, group, { onChanged: () => loadGroups() }) : null,
    describeMuted: describeMute,
  });
  const findBox = createFindBox({
    onFind: (found) => navigate({ ...filters, ref: found.ref, body_contains: found.body_contains }),
  });
  const exportButton = createExportButton(integration);
  const suggestions = attachSuggestions(filterBar.element, integration);
  // A run brings no failures of its own unless it failed too often (a `pickup` failure): show the list as it is.
  const pickupPanel = createPickupPanel(integration, { onRun: () => jobFinishedOrPicked() });
  // A resume delivers what was held: failures may follow, so the list is shown as it is then.
  const controlPanel = createControlPanel(integration, { onResumed: () => jobFinishedOrPicked() });
  const selection = createSelection({
    onChange: () => {
      list.showSelection();
      actions.render();
      autoRefresh.render();
    },
  });
  const list = createFailureList(integration, {
    selection,
    onOpen: (failure) =>
      openFailureDetail(integration, failure, {
        actions: acts
          ? (detail, close) =>
              createFailureActions(integration, detail.failure, detail.content, {
                onJob: (job) => jobsPanel.track(job),
                onSent: () => jobFinishedOrPicked(),
                close,
              }).element
          : null,
      }),
    onCount: (count) => selection.setMatching(count),
    selectable: acts,
  });
  const autoRefresh = createAutoRefresh({
    onTick: () => refreshInPlace(),
    holdReason: () => (selection.count() ? "rows are selected" : list.holdReason()),
  });
  head.parts.actions.prepend(autoRefresh.element);
  const jobsPanel = createJobsPanel(integration, {
    onActiveChange: (job) => actions.setActiveJob(job),
    onFinished: (job) => jobFinished(job),
  });
  const actions = createJobActions(integration, {
    selection,
    onStarted: (job) => jobsPanel.track(job),
    // The job in the way is shown unfolded: the person came to act, and may want to cancel it.
    onConflict: (activeJobId) => {
      jobsPanel.expand();
      return activeJobId ? jobsPanel.trackById(activeJobId) : jobsPanel.load();
    },
  });

  replace(main, ...pageLayout({ head, jobsPanel, filterBar, groupsPanel, pickupPanel, controlPanel, list, selection, actions, acts, findBox, exportButton }));

  // Groups feed two components: the panel and the filter bar's group choice. Resolves true when loaded.
  async function loadGroups() {
    try {
      const data = await api.groups(integration);
      if (disposed) return false;
      groupsPanel.render(data.items, filters.group);
      filterBar.setGroups(data.items);
      return true;
    } catch (error) {
      if (!disposed) groupsPanel.showError(userMessage(error));
      return false;
    }
  }

  /** New filters or fresh data: the list, its count and the selection start over. */
  function showFailures() {
    selection.startOver(filters);
    return list.reload(filters);
  }

  /** The config (or not knowing it) decides the pickup and delivery panels; unknown leaves them as they are. */
  async function loadHead() {
    const config = await head.load();
    if (disposed || config === undefined) return config !== undefined;
    // The pickup panel asks for a status only when the config has a source.
    pickupPanel.show(config);
    controlPanel.show(config);
    return true;
  }

  /** Everything again (Refresh, a recovery after an outage): the selection starts over. */
  async function refresh() {
    const done = await Promise.all([loadHead(), loadGroups(), jobsPanel.load(), showFailures()]);
    if (!disposed && done.every(Boolean)) autoRefresh.done();
  }

  /** The auto-refresh: the same data, the rows swapped in place, the selection (empty) kept. */
  async function refreshInPlace() {
    const done = await Promise.all([loadGroups(), jobsPanel.load(), list.refresh()]);
    if (!disposed && done.every(Boolean)) autoRefresh.done();
  }

  function jobFinished(job) {
    announceFinished(job);
    jobFinishedOrPicked();
  }

  /** Failures are gone, came back or were added: show the list as it is now. */
  function jobFinishedOrPicked() {
    loadGroups();
    showFailures();
  }

  function navigate(next) {
    const target = integrationHref(integration, next);
    if (target === window.location.hash) showFailures(); // same filters: the URL would not change
    else window.location.hash = target;
  }

  filterBar.setFilters(filters);
  findBox.setFilters(filters);
  exportButton.setFilters(filters);
  refresh();

  return {
    refresh,
    /** Same integration, other filters: update in place. */
    update(next) {
      if (next.view !== "integration" || next.integration !== integration) return false;
      filters = next.filters;
      filterBar.setFilters(filters);
      findBox.setFilters(filters);
      exportButton.setFilters(filters);
      loadGroups();
      showFailures();
      return true;
    },
    destroy() {
      disposed = true;
      autoRefresh.destroy();
      for (const component of [head, list, actions, jobsPanel, pickupPanel, controlPanel, filterBar, suggestions]) component.destroy();
    },
  };
}

/** Where each component sits: the head on top; find, filters, the jobs strip and failures in the main column; control, pickup and groups beside. */
function pageLayout({ head, jobsPanel, filterBar, groupsPanel, pickupPanel, controlPanel, list, selection, actions, acts, findBox, exportButton }) {
  return [
    head.parts.breadcrumb,
    head.parts.heading,
    h(
      "div",
      { class: "layout" },
      h(
        "div",
        { class: "stack" },
        h("section", { class: "card", "aria-label": "Find" }, findBox.element),
        h("section", { class: "card", "aria-label": "Filters" }, filterBar.element),
        jobsPanel.element,
        failuresCard(list, selection, actions, acts, exportButton),
      ),
      h("div", { class: "side" }, controlPanel.element, pickupPanel.element, groupsPanel.element),
    ),
  ];
}

/** The failures card, where the list, the selection and the job actions interleave (the last two for
 * those who may act: a reader sees the list and why there is nothing to press). */
function failuresCard(list, selection, actions, acts, exportButton) {
  const bar = acts
    ? h(
        "div",
        { class: "action-bar", role: "group", "aria-label": "Selection and actions" },
        selection.parts.allSwitch,
        selection.parts.summary,
        actions.parts.buttons,
        actions.parts.why,
      )
    : h("p", { class: "muted", "data-testid": "read-only-note" }, "Retrying and deleting failures needs the Operator role.");
  return h(
    "section",
    { class: "card", "aria-labelledby": "failures-title" },
    h("div", { class: "card-head" }, h("h2", { id: "failures-title" }, "Failures"), exportButton.element),
    list.parts.matchCount,
    bar,
    actions.parts.conflict,
    list.parts.status,
    list.parts.table,
    list.parts.foot,
  );
}
