// The control panel of an integration's page: running, paused (by whom, why) or draining; messages
// held; the circuit breaker's phase and next probe; the rate limit. "Pause…" asks for a reason;
// "Resume" delivers what was held, in arrival order. While paused or draining it polls the status.

import { api } from "../api.js";
import { openDialog } from "../dialogs.js";
import { h, replace, uid } from "../dom.js";
import { formatCount, timeElement } from "../format.js";
import { notify, notifyError } from "../notices.js";
import { can, ROLES } from "../session.js";

export const CONTROL_POLL_MS = 3000;

export function createControlPanel(integration, { onResumed } = {}) {
  const state = h("span", { class: "badge", "data-testid": "control-state" }, "…");
  const facts = h("dl", { class: "facts", "data-testid": "control-facts" });
  const error = h("p", { class: "error", hidden: true });
  const pause = h("button", { type: "button", "data-testid": "pause", onclick: () => askReason() }, "Pause…");
  const resume = h("button", { type: "button", class: "primary", "data-testid": "resume", hidden: true, onclick: () => doResume() }, "Resume");
  const element = h(
    "section",
    { class: "card", "aria-labelledby": "control-title", "data-testid": "control-panel", hidden: true },
    // Pausing and resuming are an operator's: readers see the state only.
    h("div", { class: "page-head" }, h("h2", { id: "control-title" }, "Delivery ", state), can(ROLES.operator) ? h("div", { class: "actions" }, pause, resume) : null),
    facts,
    error,
  );
  let disposed = false;
  let timer = null;

  function render(status) {
    element.hidden = false;
    error.hidden = true;
    state.textContent = status.state;
    state.className = `badge ${status.state === "running" ? "ok" : "endpoint"}`;
    const paused = status.paused;
    const breaker = status.breaker;
    const rows = [];
    if (paused) {
      const who = paused.by === "circuit-breaker" ? "the circuit breaker" : paused.by;
      rows.push(["Paused", [timeElement(paused.at), ` by ${who}`]]);
      if (paused.reason) rows.push(["Reason", h("span", { "data-testid": "pause-reason" }, paused.reason)]);
    }
    rows.push(["Held", h("span", { "data-testid": "control-held" }, `${formatCount(status.held)}${status.held_capped ? "+" : ""}`)]);
    if (breaker) {
      const phase = h("span", { class: `badge ${breaker.phase === "closed" ? "ok" : "endpoint"}`, "data-testid": "breaker-phase" }, breaker.phase.replace("_", "-"));
      rows.push(["Circuit breaker", [phase, breaker.trips ? ` · opened ${formatCount(breaker.trips)}×` : ""]]);
      if (breaker.phase !== "closed" && breaker.probe_at) rows.push([breaker.phase === "open" ? "Next probe" : "Probing since", timeElement(breaker.probe_at)]);
    }
    rows.push(["Rate limit", status.rate_limit ? `${status.rate_limit.per_second} per second` : "none"]);
    replace(facts, rows.map(([label, value]) => [h("dt", {}, label), h("dd", {}, value)]));
    const stopped = status.state === "paused";
    pause.hidden = Boolean(paused && paused.by !== "circuit-breaker");
    resume.hidden = !stopped;
    clearTimeout(timer);
    if (status.state !== "running") timer = setTimeout(load, CONTROL_POLL_MS);
  }

  /** Show the panel for this config (integrations without one, such as `_unknown`, have nothing to pause). */
  async function show(config) {
    if (disposed) return;
    if (!config) {
      element.hidden = true;
      return;
    }
    await load();
  }

  async function load() {
    try {
      const status = await api.control(integration);
      if (!disposed) render(status);
    } catch (err) {
      if (disposed) return;
      element.hidden = false;
      error.hidden = false;
      error.textContent = `Delivery status could not be loaded: ${err.message}`;
    }
  }

  function askReason() {
    const id = uid("pause-reason");
    const input = h("input", { id, type: "text", maxlength: "500", "data-testid": "pause-reason-input" });
    const confirm = h("button", { type: "button", class: "primary", "data-testid": "confirm-pause", onclick: () => modal.close("pause") }, "Pause");
    const cancel = h("button", { type: "button", onclick: () => modal.close("cancel") }, "Cancel");
    const modal = openDialog({
      title: `Pause ${integration}?`,
      body: [
        h("p", {}, "Messages are held, not attempted, until you resume; then they are delivered in the order they arrived."),
        h("div", { class: "field" }, h("label", { for: id }, "Reason (shown to others)"), input),
      ],
      actions: [cancel, confirm],
      onClose: (value) => {
        if (value === "pause") doPause(input.value.trim());
      },
    });
    input.focus();
  }

  async function doPause(reason) {
    pause.disabled = true;
    try {
      render(await api.pause(integration, reason));
      notify(`${integration} is paused.`);
    } catch (err) {
      notifyError(`Could not pause: ${err.message}`);
    } finally {
      pause.disabled = false;
    }
  }

  async function doResume() {
    resume.disabled = true;
    try {
      render(await api.resume(integration));
      notify(`${integration} resumed: held messages are being delivered.`);
      onResumed?.();
    } catch (err) {
      notifyError(`Could not resume: ${err.message}`);
    } finally {
      resume.disabled = false;
    }
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
