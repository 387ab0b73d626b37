// The outage banner. When a call finds the service or its storage not answering (api.js reports it),
// a banner under the header says so in plain words and retries on its own, with backoff: the failed
// reads are asked again (a failed write is not repeated; the health check stands in for it). When
// every one of them answers, the banner goes, the page is told (it reloads what it shows, in place)
// and a notice says storage answers again. Meanwhile panels show "unknown", never zeros.

import { api, setOutageWatcher } from "./api.js";
import { h, replace } from "./dom.js";
import { notify } from "./notices.js";

/** Seconds between retries: quick at first (a blip), then every 30 s (the 503's Retry-After). */
export const BACKOFF_S = [2, 4, 8, 15, 30];

/** Stands in for a failed write: the health check must answer before the banner goes. */
const WRITE_PROBE = "write";

/**
 * Start watching. `onRecovered()` runs once each time the service answers again after an outage.
 * Returns {down(): boolean}.
 */
export function startOutageBanner(element, { onRecovered }) {
  const failing = new Map(); // request key → retry(): what failed and must answer before the banner goes
  let attempt = 0;
  let nextAt = 0;
  let timer = null;
  let ticker = null;
  let retrying = false;
  let lastMessage = "";

  const countdown = h("span", { class: "countdown", "data-testid": "outage-countdown" });
  const message = h("span", { "data-testid": "outage-message" });
  const retryNow = h("button", { type: "button", class: "small", "data-testid": "outage-retry", onclick: () => retry() }, "Retry now");

  function show() {
    if (element.hidden) {
      // Only the sentence is an alert (announced once when shown); the countdown ticking beside it is not live.
      replace(
        element,
        h("p", { role: "alert", class: "outage-text" }, h("strong", {}, "Rebound is not answering. "), message, " Figures the page could not load are shown as unknown."),
        countdown,
        retryNow,
      );
      element.hidden = false;
    }
    if (message.textContent !== lastMessage) message.textContent = lastMessage;
  }

  function schedule() {
    clearTimeout(timer);
    clearInterval(ticker);
    const delayS = BACKOFF_S[Math.min(attempt, BACKOFF_S.length - 1)];
    nextAt = Date.now() + delayS * 1000;
    timer = setTimeout(retry, delayS * 1000);
    ticker = setInterval(renderCountdown, 1000);
    renderCountdown();
  }

  function renderCountdown() {
    if (retrying) {
      countdown.textContent = "Retrying now… ";
      return;
    }
    const left = Math.max(0, Math.ceil((nextAt - Date.now()) / 1000));
    countdown.textContent = `Retrying in ${left} s. `;
  }

  async function retry() {
    if (retrying || failing.size === 0) return;
    clearTimeout(timer);
    clearInterval(ticker);
    retrying = true;
    retryNow.disabled = true;
    renderCountdown();
    // Every failed read is asked again at once; each that answers (even with a 4xx) is done.
    await Promise.allSettled([...failing.values()].map((again) => again()));
    retrying = false;
    retryNow.disabled = false;
    if (failing.size > 0) {
      attempt += 1;
      schedule();
    }
  }

  function recovered() {
    clearTimeout(timer);
    clearInterval(ticker);
    attempt = 0;
    element.hidden = true;
    replace(element);
    notify("Rebound answers again; the page was reloaded.");
    onRecovered();
  }

  setOutageWatcher({
    failed(error, { key, retry: again }) {
      const first = failing.size === 0;
      // A failed write is not sent again by itself: the health check tells when to try it.
      if (again) failing.set(key, again);
      else failing.set(WRITE_PROBE, () => api.health().then(() => answered(WRITE_PROBE)));
      lastMessage = error.message;
      show();
      if (first && !retrying) {
        attempt = 0;
        schedule();
      }
    },
    answered,
  });

  function answered(key) {
    if (!failing.delete(key)) return;
    if (failing.size === 0) recovered();
  }

  return {
    down: () => failing.size > 0,
  };
}
