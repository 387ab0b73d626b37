// A message's timeline, in the failure detail: what happened to it from its first failed attempt on
// (GET .../messages/{id}/timeline), oldest first. A message delivered at its first attempt has none.

import { api } from "../api.js";
import { h, replace } from "../dom.js";
import { formatCount, timeElement } from "../format.js";

const LABELS = {
  received: "Received",
  attempt: "Attempt",
  retry_scheduled: "Retry scheduled",
  delayed: "Delayed",
  failed: "Failed",
  resent: "Resent",
  parked: "Parked",
  recovered: "Recovered",
  delivered: "Delivered",
};
const TONE = { failed: "endpoint", parked: "catastrophic", delivered: "ok", retry_scheduled: "engine", delayed: "engine" };

/** What an event says, in a line. */
export function describeEvent({ event, details: d = {} }) {
  switch (event) {
    case "received":
      return d.sender ? `from ${d.sender}` : "";
    case "attempt":
      return `run ${d.engine_attempt}, attempt ${d.endpoint_attempt}${d.endpoint ? ` to ${d.endpoint}` : ""}: ${d.status_code ?? d.outcome} · ${formatCount(Math.round(d.duration_ms ?? 0))} ms`;
    case "retry_scheduled":
      return `run ${d.next_engine_attempt} in ${d.delay_s} s · ${d.reason ?? ""}`;
    case "delayed":
      return `delay action ${d.delay_actions}, ${d.delay_s} s (error window over its threshold)`;
    case "failed":
      return `${d.origin}${d.status_code ? ` ${d.status_code}` : ""}: ${d.reason ?? ""}${d.failure_id ? ` · failure ${d.failure_id}` : " · not kept"}`;
    case "resent":
      return `by job ${d.job_id}${d.actor ? ` (started by ${d.actor})` : ""}`;
    case "parked":
      return d.reason ?? "";
    case "recovered":
      return `back on the queue (recovery ${d.recovery_count})`;
    case "delivered":
      return `${d.status_code ? `status ${d.status_code} · ` : ""}${formatCount(d.attempts)} attempts${d.job_id ? ` · job ${d.job_id}` : ""}`;
    default:
      return "";
  }
}

/** The section: loads the first page of events (at most 500) when the detail opens. */
export function timelineSection(integration, failure) {
  if (failure.origin === "pickup" || failure.origin === "ingest") {
    // A source that kept failing, or text that was no message: nothing went through the engine to record.
    return null;
  }
  const messageId = failure.message_id;
  const body = h("div", { "data-testid": "timeline" }, h("p", { class: "muted" }, "Loading…"));
  api.timeline(integration, messageId).then(
    (timeline) => replace(body, render(timeline)),
    (error) =>
      replace(
        body,
        h("p", { class: "muted" }, error.status === 404 ? "No timeline recorded for this message." : `The timeline could not be loaded: ${error.message}`),
      ),
  );
  return h("section", { "aria-labelledby": "detail-timeline" }, h("h3", { id: "detail-timeline" }, "Timeline"), body);
}

function render({ items, next_cursor: more }) {
  return [
    h(
      "ol",
      { class: "timeline" },
      items.map((item) =>
        h(
          "li",
          { dataset: { event: item.event } },
          timeElement(item.at),
          h("span", { class: `badge ${TONE[item.event] ?? ""}` }, LABELS[item.event] ?? item.event),
          h("span", { class: "what" }, describeEvent(item)),
          item.instance ? h("span", { class: "muted small-print" }, item.instance) : null,
        ),
      ),
    ),
    more ? h("p", { class: "muted" }, `The first ${items.length} events; the API pages through the rest.`) : null,
  ];
}
