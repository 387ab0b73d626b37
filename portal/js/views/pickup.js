// The pickup panel of an integration's page: where its source reads, how its runs went, and
// "Pick up now". Hidden when the integration has no source (`show(config)` asks for nothing then). After "Pick up now" it polls the
// status until the requested run has ended (or a while has passed), then tells the page, which
// refreshes its failures (a run that keeps failing records a `pickup` failure).

import { api } from "../api.js";
import { h, replace } from "../dom.js";
import { formatCount, formatDuration, timeElement } from "../format.js";
import { notifyError } from "../notices.js";
import { can, ROLES } from "../session.js";

export const PICKUP_POLL_MS = 1000;
const POLL_LIMIT = 60; // polls after "Pick up now" before the panel stops watching

export function createPickupPanel(integration, { onRun } = {}) {
  const facts = h("dl", { class: "facts", "data-testid": "pickup-facts" });
  const error = h("p", { class: "error", hidden: true, "data-testid": "pickup-error" });
  const note = h("p", { class: "muted", role: "status", "aria-live": "polite", "data-testid": "pickup-note" });
  const button = h("button", { type: "button", class: "primary", onclick: () => runNow() }, "Pick up now");
  const element = h(
    "section",
    { class: "card", "aria-labelledby": "pickup-title", "data-testid": "pickup-panel", hidden: true },
    // "Pick up now" is an operator's; others see the source's status.
    h("div", { class: "page-head" }, h("h2", { id: "pickup-title" }, "Pickup"), h("div", { class: "actions" }, can(ROLES.operator) ? button : null)),
    facts,
    error,
    note,
  );
  let disposed = false;
  let timer = null;

  function render(status) {
    element.hidden = false;
    element.dataset.outcome = status.last_outcome ?? "none";
    const outcome = status.last_outcome
      ? h("span", { class: `badge ${status.last_outcome === "failed" ? "endpoint" : "ok"}`, "data-testid": "pickup-outcome" }, status.last_outcome)
      : h("span", { class: "muted", "data-testid": "pickup-outcome" }, "not run yet");
    const rows = [
      ["Source", h("code", {}, status.target)],
      ["Interval", `every ${formatDuration(status.interval_seconds)}${status.enabled ? "" : " (disabled)"}`],
      ["Last run", status.last_run_at ? [timeElement(status.last_run_at), outcome] : outcome],
      ["Picked", h("span", { "data-testid": "pickup-picked" }, formatCount(status.picked_total))],
      ["Failed runs in a row", formatCount(status.consecutive_failures)],
      ["Next run", status.running ? "running now" : status.run_requested ? "asked for" : timeElement(status.next_run_at)],
    ];
    replace(facts, rows.map(([label, value]) => [h("dt", {}, label), h("dd", {}, value)]));
    error.hidden = !status.last_error;
    error.textContent = status.last_error ? `Last error: ${status.last_error}` : "";
    button.disabled = !status.enabled || status.running;
    button.title = status.enabled ? "" : "The source is disabled in the configuration";
  }

  /** Show the panel for this config: its source's status, or nothing when it has no source. */
  async function show(config) {
    if (disposed) return;
    if (!config?.source) {
      clearTimeout(timer);
      element.hidden = true;
      return;
    }
    await load();
  }

  async function load() {
    try {
      const status = await api.pickup(integration);
      if (!disposed) render(status);
      return status;
    } catch (err) {
      if (disposed) return null;
      if (err.status === 404) element.hidden = true; // the source was removed meanwhile
      else {
        element.hidden = false;
        replace(facts);
        error.hidden = false;
        error.textContent = `Pickup status could not be loaded: ${err.message}`;
      }
      return null;
    }
  }

  async function runNow() {
    button.disabled = true;
    let started;
    try {
      started = await api.runPickup(integration);
    } catch (err) {
      button.disabled = false;
      notifyError(`Could not start the pickup: ${err.message}`);
      return;
    }
    render(started);
    note.textContent = "Picking up…";
    watch(started.last_run_at, 0);
  }

  function watch(before, polls) {
    clearTimeout(timer);
    timer = setTimeout(async () => {
      const status = await load();
      if (disposed) return;
      const ended = status && status.last_run_at !== before && !status.running;
      if (ended) {
        note.textContent = status.last_outcome === "failed" ? "The run failed." : "Done.";
        onRun?.(status);
      } else if (polls + 1 < POLL_LIMIT) {
        watch(before, polls + 1);
      } else {
        note.textContent = "Still waiting for the run; refresh later.";
      }
    }, PICKUP_POLL_MS);
  }

  return {
    element,
    show,
    destroy() {
      disposed = true;
      clearTimeout(timer);
    },
  };
}
