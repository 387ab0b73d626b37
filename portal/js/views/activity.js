// The activity panel: what the engine did (GET /api/metrics), in the recent window and since
// the instance started, in total and per integration (reloaded with the page). Counters are per instance: on Azure
// with several instances this is the one that answered; App Insights has the sum.

import { api, userMessage } from "../api.js";
import { h, replace } from "../dom.js";
import { formatCount } from "../format.js";

const TOTALS = [
  ["received", "Received"],
  ["delivered", "Delivered"],
  ["endpoint_retries", "Endpoint retries"],
  ["engine_requeues", "Engine requeues"],
  ["delay_actions", "Delay actions"],
  ["failures", "Failures"],
  ["parked", "Parked"],
  ["reinserted", "Reinserted"],
  ["job_items", "Job items"],
];

// Failures are counted by origin; the panel shows their sum and names the origins in the table.
function withFailures(counts) {
  const failures = Object.entries(counts)
    .filter(([name]) => name.startsWith("failures_"))
    .reduce((sum, [, value]) => sum + value, 0);
  return { ...counts, failures };
}

export function mountActivityPanel(container) {
  const body = h("div", { "data-testid": "activity-body" }, h("p", { class: "muted" }, "Loading…"));
  const panel = h(
    "section",
    { class: "card", "aria-labelledby": "activity-title", "data-testid": "activity-panel" },
    h("h2", { id: "activity-title" }, "Activity"),
    body,
  );
  container.append(panel);
  let disposed = false;

  /** Resolves true when the counters were shown, false when they are unknown. */
  async function load() {
    let snapshot;
    try {
      snapshot = await api.metrics();
    } catch (error) {
      if (!disposed) replace(body, h("p", { class: "muted", "data-testid": "activity-unknown" }, `Activity unknown: ${userMessage(error)}`));
      return false;
    }
    if (!disposed) render(snapshot);
    return true;
  }

  function render(snapshot) {
    const windowTotals = withFailures(snapshot.total.window);
    const startTotals = withFailures(snapshot.total.since_start);
    const minutes = snapshot.window_minutes;
    const busiest = Object.entries(snapshot.integrations)
      .map(([name, counts]) => [name, withFailures(counts.window)])
      .filter(([, counts]) => counts.received || counts.delivered || counts.failures)
      .sort((a, b) => (b[1].received ?? 0) - (a[1].received ?? 0))
      .slice(0, 8);
    replace(
      body,
      h(
        "table",
        { class: "compact", "data-testid": "activity-totals" },
        h("caption", { class: "visually-hidden" }, "Engine counters"),
        h(
          "thead",
          {},
          h(
            "tr",
            {},
            h("th", { scope: "col" }, "Counter"),
            h("th", { scope: "col", class: "num" }, `Last ${minutes} min`),
            h("th", { scope: "col", class: "num" }, "Since start"),
          ),
        ),
        h(
          "tbody",
          {},
          TOTALS.map(([key, label]) =>
            h(
              "tr",
              { dataset: { counter: key } },
              h("th", { scope: "row" }, label),
              h("td", { class: "num" }, formatCount(windowTotals[key] ?? 0)),
              h("td", { class: "num" }, formatCount(startTotals[key] ?? 0)),
            ),
          ),
        ),
      ),
      busiest.length
        ? [
            h("h3", {}, `Busiest integrations, last ${minutes} min`),
            h(
              "ul",
              { class: "plain-list", "data-testid": "activity-integrations" },
              busiest.map(([name, counts]) =>
                h(
                  "li",
                  { dataset: { integration: name } },
                  h("strong", {}, name),
                  `: ${formatCount(counts.received ?? 0)} received, ${formatCount(counts.delivered ?? 0)} delivered, `,
                  `${formatCount(counts.failures)} failed`,
                ),
              ),
            ),
          ]
        : h("p", { class: "muted" }, `Nothing happened in the last ${minutes} minutes.`),
    );
  }

  // The page loads it, and reloads it with its auto-refresh.
  return {
    load,
    destroy() {
      disposed = true;
    },
  };
}
