// Retry and Delete for what is selected: the buttons, why they are disabled, the confirmation,
// starting the job, and the note when another job got there first (409). Only one job per
// integration runs at a time, so the page tells this component which job is active.

import { api } from "../api.js";
import { confirmAction } from "../dialogs.js";
import { h, replace, uid } from "../dom.js";
import { formatCount, plural } from "../format.js";
import { notify, notifyError } from "../notices.js";
import { ACTION_LABELS, describeSelection } from "./jobs.js";

/** The jobs API takes at most this many ids; beyond it "Select all messages" with a filter is the way. */
const MAX_IDS = 1000;

/**
 * `onStarted(job)` fires with the job just started; `onConflict(activeJobId | null)` when the
 * server answered that another job is active (its id, when the answer named it).
 */
export function createJobActions(integration, { selection, onStarted, onConflict }) {
  let activeJob = null;
  let conflict = null; // the 409 we were answered, until that job ends
  let disposed = false;

  const why = h("p", { class: "why", id: uid("why"), "data-testid": "why-disabled" });
  const retryButton = h("button", { type: "button", class: "primary", "aria-describedby": why.id, onclick: () => start("retry") }, "Retry");
  const deleteButton = h("button", { type: "button", class: "danger", "aria-describedby": why.id, onclick: () => start("delete") }, "Delete");
  const conflictBox = h("div", {});

  /** Why Retry and Delete cannot be used now; "" when they can. */
  function reason() {
    const count = selection.count();
    if (activeJob) {
      return `A ${activeJob.action} job is ${activeJob.state}${conflict ? " (started elsewhere)" : ""}. Only one job per integration runs at a time: wait for it to finish or cancel it.`;
    }
    if (selection.allMatching && count === null) return "Counting the failures to select…";
    if (!count) {
      return selection.allMatching ? "No failures match: nothing to retry or delete." : "Select failures in the table, or turn on “Select all messages”.";
    }
    if (!selection.allMatching && count > MAX_IDS) {
      return `More than ${formatCount(MAX_IDS)} rows are selected; use “Select all messages” (with filters) instead.`;
    }
    return "";
  }

  function render() {
    const text = reason();
    why.textContent = text;
    retryButton.disabled = deleteButton.disabled = Boolean(text);
    if (!activeJob) replace(conflictBox);
  }

  async function start(action) {
    const count = selection.count();
    const request = selection.request();
    const label = ACTION_LABELS[action];
    if (!(await confirmJob(action, count, request)) || disposed) return;
    retryButton.disabled = deleteButton.disabled = true;
    try {
      const job = await api.startJob(integration, action, request);
      if (disposed) return;
      notify(`${label} job started for ${plural(count, "failure")}.`);
      selection.clear();
      onStarted(job);
    } catch (error) {
      if (disposed) return;
      if (error.status === 409) {
        showConflict(error.details.active_job_id);
      } else {
        notifyError(`The ${action} job was not started: ${error.message}`);
        render();
      }
    }
  }

  function showConflict(activeJobId) {
    conflict = activeJobId ?? true;
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
    onConflict(activeJobId ?? null);
  }

  return {
    /** Placed by the page: the buttons and the reason in the action bar, the conflict note below it. */
    parts: { buttons: h("div", { class: "buttons" }, retryButton, deleteButton), why, conflict: conflictBox },
    /** The integration's active job (null: none); while there is one, no other can start. */
    setActiveJob(job) {
      activeJob = job;
      if (!job) conflict = null;
      render();
    },
    render,
    destroy() {
      disposed = true;
    },
  };
}

/** Ask before a job starts, stating how many failures it takes and what it will do to them. */
function confirmJob(action, count, request) {
  const label = ACTION_LABELS[action];
  return confirmAction({
    title: `${label} ${plural(count, "failure")}?`,
    message: [
      h(
        "p",
        { "data-testid": "confirm-message" },
        action === "retry"
          ? `${plural(count, "message")} will be sent to the receiver again, and their failures removed once they are back on the queue. Any that fail again come back as new failures.`
          : `${plural(count, "failure")} and ${count === 1 ? "its" : "their"} content will be deleted. This cannot be undone.`,
      ),
      h("p", { class: "muted" }, `Selection: ${describeSelection(request)}.`),
    ],
    confirmLabel: `${label} ${plural(count, "failure")}`,
    danger: action === "delete",
  });
}

/** Tell the user how a job of this page ended. */
export function announceFinished(job) {
  const label = ACTION_LABELS[job.action] ?? job.action;
  const summary = `${label} job ${job.state}: ${formatCount(job.succeeded)} succeeded, ${formatCount(job.failed)} failed.`;
  if (job.state === "completed") notify(summary);
  else notify(summary, job.state === "failed" ? "error" : "warn");
}
