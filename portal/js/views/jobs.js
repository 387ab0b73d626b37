// Job status cards: one per retry/delete job of the integration, newest first. Active jobs
// (queued or running) are polled until they end; finished jobs stay listed. The panel tells
// the page which job is active, because only one may run per integration at a time.

import { api } from "../api.js";
import { h, replace, uid } from "../dom.js";
import { formatCount, formatDuration, formatRate, formatTime, plural } from "../format.js";
import { notifyError } from "../notices.js";
import { can, ROLES } from "../session.js";

export const POLL_INTERVAL_MS = 1000;
const SETTLE_POLL_MS = 5000;
const FINISHED_SHOWN = 5;
const ACTIVE_STATES = new Set(["queued", "running"]);

export const isActive = (job) => ACTIVE_STATES.has(job.state);
/** A retry job whose resent messages the engine has not all settled yet (still worth polling). */
const isSettling = (job) => !isActive(job) && job.pending > 0;

/** A retry job's two phases: "Resent 832 · Delivered 820 · Failed again 12 · 0 pending". */
export function describeSettled(job) {
  if (job.resent === null || job.resent === undefined) return "";
  return `Resent ${formatCount(job.resent)} · Delivered ${formatCount(job.delivered)} · Failed again ${formatCount(job.failed_again)} · ${formatCount(job.pending)} pending`;
}

export const ACTION_LABELS = { retry: "Retry", delete: "Delete" };

/** "4 selected failures", "All failures", "Failures matching sender = shop, q = timeout". */
export function describeSelection(selection) {
  if (!selection) return "";
  if (selection.ids) return `${plural(selection.ids.length, "selected failure")}`;
  if (selection.filter) {
    const parts = Object.entries(selection.filter)
      .filter(([, value]) => value !== null && value !== undefined && value !== "")
      .map(([key, value]) => `${key} = ${value}`);
    return parts.length ? `Failures matching ${parts.join(", ")}` : "All failures";
  }
  return "All failures";
}

/** Where a send-elsewhere job delivers: "https://archive.example/in", "queue archive", "Service Bus orders". */
export function describeTarget(target) {
  if (target.kind === "http") return target.url;
  if (target.kind === "storage_queue") return `queue ${target.queue}`;
  return `Service Bus ${target.entity}`;
}

/**
 * The panel. `onActiveChange(job | null)` fires whenever the active job changes (or its
 * counters move); `onFinished(job)` once when a watched job ends.
 */
export function createJobsPanel(integration, { onActiveChange, onFinished }) {
  const list = h("div", { class: "jobs", "data-testid": "jobs" });
  const more = h("button", { type: "button", class: "small", onclick: () => toggleOlder() }, "");
  const moreBar = h("div", { class: "toolbar", hidden: true }, more);
  const element = h(
    "section",
    { class: "card", "aria-labelledby": "jobs-title" },
    h("h2", { id: "jobs-title" }, "Jobs"),
    list,
    moreBar,
  );
  const cards = new Map(); // job id → card
  let jobs = []; // newest first
  let showOlder = false;
  let timer = null;
  let disposed = false;

  function active() {
    return jobs.find(isActive) ?? null;
  }

  function render() {
    const finished = jobs.filter((job) => !isActive(job));
    const shown = new Set([...jobs.filter(isActive), ...(showOlder ? finished : finished.slice(0, FINISHED_SHOWN))]);
    const visible = jobs.filter((job) => shown.has(job));
    if (visible.length === 0) {
      replace(list, h("p", { class: "muted", "data-testid": "no-jobs" }, can(ROLES.operator) ? "No jobs yet. Select failures and choose Retry or Delete." : "No jobs yet."));
    } else {
      replace(list, visible.map((job) => cardFor(job).element));
    }
    const hidden = finished.length - FINISHED_SHOWN;
    moreBar.hidden = hidden <= 0;
    more.textContent = showOlder ? "Show fewer jobs" : `Show ${plural(hidden, "older job")}`;
  }

  function toggleOlder() {
    showOlder = !showOlder;
    render();
  }

  function cardFor(job) {
    let card = cards.get(job.id);
    if (!card) {
      card = createJobCard(job, { onCancel: () => cancel(job.id) });
      cards.set(job.id, card);
    } else {
      card.update(job);
    }
    return card;
  }

  /** Put a job into the list (new, or fresher counters) and keep polling while it is active. */
  function upsert(job) {
    const before = jobs.find((existing) => existing.id === job.id);
    jobs = [job, ...jobs.filter((existing) => existing.id !== job.id)].sort((a, b) => b.created_at.localeCompare(a.created_at));
    render();
    onActiveChange(active());
    if (before && isActive(before) && !isActive(job)) onFinished(job);
    schedule();
  }

  function schedule() {
    clearTimeout(timer);
    timer = null;
    if (disposed) return;
    if (active()) timer = setTimeout(poll, POLL_INTERVAL_MS);
    else if (jobs.find(isSettling)) timer = setTimeout(poll, SETTLE_POLL_MS); // slower: messages settle over minutes
  }

  async function poll() {
    const job = active() ?? jobs.find(isSettling);
    if (!job || disposed) return;
    try {
      const fresh = await api.job(integration, job.id);
      if (!disposed) upsert(fresh);
    } catch (error) {
      if (disposed) return;
      if (error.status === 401) return; // the app is asking for the key now
      schedule(); // transient: keep trying
    }
  }

  async function cancel(id) {
    try {
      upsert(await api.cancelJob(integration, id));
    } catch (error) {
      if (error.status === 409) {
        await trackById(id); // it ended on its own meanwhile; show how
      } else {
        notifyError(`Could not cancel the job: ${error.message}`);
      }
    }
  }

  async function load() {
    try {
      const data = await api.jobs(integration);
      if (disposed) return;
      jobs = data.items;
      render();
      onActiveChange(active());
      schedule();
    } catch (error) {
      if (!disposed) replace(list, h("p", { class: "alert", role: "alert" }, `Jobs could not be loaded: ${error.message}`));
    }
  }

  /** A job we only know by id (e.g. the active one a 409 named): fetch it and watch it. */
  async function trackById(id) {
    try {
      upsert(await api.job(integration, id));
    } catch {
      await load();
    }
  }

  render();
  return {
    element,
    load,
    track: upsert,
    trackById,
    active,
    destroy() {
      disposed = true;
      clearTimeout(timer);
    },
  };
}

function createJobCard(job, { onCancel }) {
  const titleId = uid("job");
  const title = h("span", { class: "title", id: titleId });
  const state = h("span", { class: "state", "data-testid": "job-state" });
  const what = h("span", { class: "muted" });
  const cancel = h("button", { type: "button", class: "small", onclick: () => requestCancel() }, "Cancel");
  const progress = h("progress", { "aria-labelledby": titleId });
  const stats = h("dl", { class: "stats" });
  const settled = h("p", { class: "settled", "data-testid": "job-settled" });
  const times = h("p", { class: "muted small-print" });
  const error = h("p", { class: "error", hidden: true });
  const element = h(
    "article",
    { class: "job-card", "aria-labelledby": titleId, "data-testid": "job-card" },
    h("div", { class: "head" }, title, state, what, cancel),
    progress,
    stats,
    settled,
    times,
    error,
  );

  function requestCancel() {
    cancel.disabled = true;
    cancel.textContent = "Cancelling…";
    onCancel();
  }

  function update(next) {
    const active = isActive(next);
    element.dataset.jobId = next.id;
    element.dataset.state = next.state;
    element.dataset.active = String(active);
    title.textContent = `${ACTION_LABELS[next.action] ?? next.action} job`;
    state.textContent = next.cancel_requested && active ? `${next.state}, cancelling` : next.state;
    state.className = `state ${next.state}`;
    what.textContent = `· ${describeSelection(next.selection)}${next.target ? ` → ${describeTarget(next.target)}` : ""}`;
    cancel.hidden = !active || !can(ROLES.operator); // cancelling is an operator's
    if (active && !next.cancel_requested) {
      cancel.disabled = false;
      cancel.textContent = "Cancel";
    }
    if (next.total === null || next.total === undefined) {
      progress.removeAttribute("value"); // indeterminate until the job has counted its selection
    } else {
      progress.max = Math.max(next.total, 1);
      progress.value = next.total === 0 ? 1 : next.processed;
    }
    const started = next.started_at ?? next.created_at;
    const end = next.finished_at ? new Date(next.finished_at) : new Date();
    const facts = [
      ["Processed", `${formatCount(next.processed)} of ${formatCount(next.total)}`, "processed"],
      ["Succeeded", formatCount(next.succeeded), "succeeded"],
      ["Failed", formatCount(next.failed), "failed"],
      next.skipped ? ["Skipped", formatCount(next.skipped), "skipped"] : null,
      ["Rate", formatRate(next.rate_per_s), "rate"],
      ["Elapsed", formatDuration((end - new Date(started)) / 1000), "elapsed"],
    ].filter(Boolean);
    replace(stats, facts.map(([label, value, key]) => h("div", {}, h("dt", {}, label), h("dd", { dataset: { stat: key } }, value))));
    settled.textContent = describeSettled(next);
    settled.hidden = !settled.textContent;
    const by = next.created_by ? ` by ${next.created_by.name}` : "";
    times.textContent = `Created ${formatTime(next.created_at)}${by}${next.finished_at ? ` · finished ${formatTime(next.finished_at)}` : ""}`;
    error.hidden = !next.last_error;
    error.textContent = next.last_error ? `Last error: ${next.last_error}` : "";
  }

  update(job);
  return { element, update };
}
