// Auto-refresh: a view's data is reloaded every 15 s, in place, while the page is visible. It holds
// still while the person is in the middle of something: a dialog is open, rows are selected, or the
// view says why (`holdReason()`); during an outage the banner does the retrying instead. The person
// can pause it; the choice is kept for the browser (localStorage). Someone who asked for reduced
// motion gets it paused to begin with (content that changes by itself is motion they did not start).

import { h } from "./dom.js";
import { timeOfDay } from "./format.js";

export const REFRESH_INTERVAL_MS = 15_000;
const STORAGE_KEY = "rebound.autoRefresh";

let outageDown = () => false;

/** The outage banner's state: while it is up, ticks are skipped (it retries with backoff). */
export function setOutageCheck(check) {
  outageDown = check;
}

function preferredOn() {
  const stored = localStorage.getItem(STORAGE_KEY);
  if (stored === "on" || stored === "off") return stored === "on";
  return !window.matchMedia("(prefers-reduced-motion: reduce)").matches;
}

/**
 * `onTick()` reloads the view (returns a promise); `holdReason()` returns a sentence while the view
 * must not change under the person ("rows are selected"), else null. Returns {element, done(), destroy()}.
 */
export function createAutoRefresh({ onTick, holdReason = () => null, intervalMs = REFRESH_INTERVAL_MS }) {
  let on = preferredOn();
  let running = false;
  let timer = null;
  let updatedAt = null;

  const toggle = h("button", { type: "button", class: "small", "aria-pressed": String(on), "data-testid": "auto-refresh", onclick: () => setOn(!on) }, "Auto-refresh");
  const state = h("span", { class: "refresh-state muted", "data-testid": "refresh-state" });
  const element = h("div", { class: "auto-refresh", role: "group", "aria-label": "Auto-refresh" }, toggle, state);

  function setOn(next) {
    on = next;
    localStorage.setItem(STORAGE_KEY, on ? "on" : "off");
    toggle.setAttribute("aria-pressed", String(on));
    render();
    schedule();
  }

  function held() {
    if (outageDown()) return "Rebound is not answering";
    if (document.querySelector("dialog[open]")) return "a dialog is open";
    return holdReason();
  }

  function render() {
    const updated = updatedAt ? `Updated ${timeOfDay(updatedAt)}` : "";
    let why = "";
    if (!on) why = "paused";
    else if (held()) why = `on hold while ${held()}`;
    else why = `every ${intervalMs / 1000} s`;
    state.textContent = [updated, why].filter(Boolean).join(" · ");
  }

  function schedule() {
    clearTimeout(timer);
    timer = on ? setTimeout(tick, intervalMs) : null;
  }

  async function tick() {
    render();
    if (!on) return;
    if (running || document.hidden || held()) {
      schedule();
      return;
    }
    running = true;
    try {
      await onTick();
    } finally {
      running = false;
      schedule();
    }
  }

  schedule();
  render();
  return {
    element,
    /** The view loaded its data (by a tick, a Refresh button or a recovery): note the time, restart the interval. */
    done() {
      updatedAt = new Date();
      render();
      schedule();
    },
    /** Something the hold depends on changed (a selection, a dialog): say so now. */
    render,
    destroy() {
      clearTimeout(timer);
    },
  };
}
