// Job status cards: one per retry/delete job of the integration, newest first. Active jobs
// (queued or running) are polled until they end; finished jobs stay listed. The panel tells
// the page which job is active, because only one may run per integration at a time.
// The panel is a one-line strip above the list: the newest job (live progress while it runs) and
// "Show jobs", which unfolds the cards; folded, the cards stay in the page, updated, but hidden.

import { api, userMessage } from "../api.js";
import { h, replace, uid } from "../dom.js";
import { formatCount, formatDuration, formatRate, plural, timeElement } from "../format.js";
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
  const list = h("div", { class: "jobs", "data-testid": "jobs", id: uid("jobs") });
  const more = h("button", { type: "button", class: "small", onclick: () => toggleOlder() }, "");
  const moreBar = h("div", { class: "toolbar", hidden: true }, more);
  const details = h("div", { class: "job-details", hidden: true }, list, moreBar);
  const summary = h("span", { class: "job-summary", "data-testid": "job-summary" });
  const stripProgress = h("progress", { "aria-label": "Newest job's progress", hidden: true });
  const toggle = h(
    "button",
    { type: "button", class: "small", "aria-expanded": "false", "aria-controls": list.id, "data-testid": "jobs-toggle", hidden: true, onclick: () => setExpanded(details.hidden) },
    "Show jobs",
  );
  const element = h(
    "section",
    { class: "card job-strip", "aria-labelledby": "jobs-title", "data-testid": "jobs-strip" },
    h("div", { class: "strip" }, h("h2", { id: "jobs-title" }, "Jobs"), summary, stripProgress, toggle),
    details,
  );
  const cards = new Map(); // job id → card
  let jobs = []; // newest first
  let showOlder = false;
  let timer = null;
  let disposed = false;

  function active() {
    return jobs.find(isActive) ?? null;
  }

  function setExpanded(open) {
    details.hidden = !open;
    toggle.setAttribute("aria-expanded", String(open));
    toggle.textContent = open ? "Hide jobs" : `Show jobs (${formatCount(jobs.length)})`;
  }

  function render() {
    const finished = jobs.filter((job) => !isActive(job));
    const shown = new Set([...jobs.filter(isActive), ...(showOlder ? finished : finished.slice(0, FINISHED_SHOWN))]);
    const visible = jobs.filter((job) => shown.has(job));
    replace(list, visible.map((job) => cardFor(job).element));
    const hidden = finished.length - FINISHED_SHOWN;
    moreBar.hidden = hidden <= 0;
    more.textContent = showOlder ? "Show fewer jobs" : `Show ${plural(hidden, "older job")}`;
    renderStrip();
  }

  /** The newest job in one line: the active one if any, else the last to finish. */
  function renderStrip() {
    const newest = active() ?? jobs[0];
    toggle.hidden = jobs.length === 0;
    if (jobs.length === 0) setExpanded(false);
    else toggle.textContent = details.hidden ? `Show jobs (${formatCount(jobs.length)})` : "Hide jobs";
    if (!newest) {
      summary.textContent = can(ROLES.operator) ? "No jobs yet. Select failures and choose Retry or Delete." : "No jobs yet.";
      summary.dataset.state = "none";
      stripProgress.hidden = true;
      return;
    }
    summary.dataset.state = newest.state;
    summary.dataset.newestJob = newest.id;
    replace(
      summary,
      h("strong", {}, `${ACTION_LABELS[newest.action] ?? newest.action} job`),
      " ",
      h("span", { class: `state ${newest.state}` }, newest.state),
      ` ${formatCount(newest.processed)} of ${formatCount(newest.total)}`,
      // Did the retry work: the settle phase, in the strip too (the cards are folded).
      describeSettled(newest) ? h("span", { "data-testid": "strip-settled" }, ` · ${describeSettled(newest)}`) : null,
      newest.finished_at ? h("span", { class: "muted" }, " · finished ", timeElement(newest.finished_at)) : null,
    );
    stripProgress.hidden = !isActive(newest);
    if (newest.total === null || newest.total === undefined) stripProgress.removeAttribute("value");
    else {
      stripProgress.max = Math.max(newest.total, 1);
      stripProgress.value = newest.total === 0 ? 1 : newest.processed;
    }
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
        notifyError(`Could not cancel the job: ${userMessage(error)}`);
      }
    }
  }

  /** Resolves true when the jobs were listed. */
  async function load() {
    try {
      const data = await api.jobs(integration);
      if (disposed) return false;
      const before = new Map(jobs.map((job) => [job.id, job]));
      jobs = data.items;
      render();
      onActiveChange(active());
      // A job seen running that has ended meanwhile (by a list, not by its own poll) is announced too.
      for (const job of jobs) if (before.has(job.id) && isActive(before.get(job.id)) && !isActive(job)) onFinished(job);
      schedule();
      return true;
    } catch (error) {
      if (disposed) return false;
      summary.dataset.state = "unknown";
      replace(summary, h("span", { class: "alert warn inline" }, `Jobs unknown: ${userMessage(error)}`));
      stripProgress.hidden = true;
      return false;
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
    expand: () => setExpanded(true),
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
    replace(times, "Created ", timeElement(next.created_at), by, next.finished_at ? [" · finished ", timeElement(next.finished_at)] : null);
    error.hidden = !next.last_error;
    error.textContent = next.last_error ? `Last error: ${next.last_error}` : "";
  }

  update(job);
  return { element, update };
}
