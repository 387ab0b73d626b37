// The recovery panel: messages parked in the recovery flow and in the host's poison queues,
// what the last sweep did, and "Replay now" (the same sweep the timer runs).

import { api, userMessage } from "../api.js";
import { h, replace } from "../dom.js";
import { formatAgo, formatCount, formatDuration, timeElement } from "../format.js";
import { errorBlock, notify } from "../notices.js";
import { can, ROLES } from "../session.js";

export function mountRecoveryPanel(container) {
  const body = h("div", { "data-testid": "recovery-body" }, h("p", { class: "muted" }, "Loading…"));
  const replay = h("button", { type: "button", class: "primary", onclick: () => runReplay() }, "Replay now");
  const panel = h(
    "section",
    { class: "card", "aria-labelledby": "recovery-title", "data-testid": "recovery-panel" },
    h("h2", { id: "recovery-title" }, "Recovery"),
    h(
      "p",
      { class: "muted" },
      "Messages parked while an internal service was unreachable, and messages the host gave up on. ",
      "A sweep puts them back on their way.",
    ),
    body,
  );
  container.append(panel);
  let disposed = false;

  /** Resolves true when the status was shown, false when it is unknown (or not on this server). */
  async function load() {
    let status;
    try {
      status = await api.recovery();
    } catch (error) {
      if (disposed) return false;
      // 404: a server without the recovery routes; say so instead of showing an error.
      if (error.status === 404) {
        replace(body, h("p", { class: "muted", "data-testid": "recovery-unavailable" }, "Recovery status unavailable on this server."));
        return true;
      }
      renderUnknown(error);
      return false;
    }
    if (!disposed) renderStatus(status);
    return !status.unknown?.length;
  }

  /** The call failed: every figure is unknown (a zero or "no sweep yet" would be a false all-clear). */
  function renderUnknown(error) {
    replace(
      body,
      h("p", { class: "alert warn", "data-testid": "recovery-unknown" }, `Recovery status unknown: ${userMessage(error)}`),
      h(
        "dl",
        { class: "facts" },
        h("dt", {}, "Waiting for recovery"),
        h("dd", { "data-testid": "recovery-count" }, "unknown"),
        h("dt", {}, "Poisoned"),
        h("dd", { "data-testid": "poison-count" }, "unknown"),
        h("dt", {}, "Last sweep"),
        h("dd", { "data-testid": "last-sweep" }, "unknown"),
      ),
      h("div", { class: "toolbar" }, h("button", { type: "button", onclick: () => load() }, "Refresh")),
    );
  }

  function renderStatus(status) {
    // Queues storage did not answer for are left out of `queues` and named in `unknown`: their kind's total is unknown.
    const unknown = status.unknown ?? [];
    const unknownKinds = new Set(unknown.filter((name) => name !== "last_sweep").map((name) => (name.includes("poison") ? "poison" : "recovery")));
    const total = (kind) =>
      unknownKinds.has(kind) ? "unknown" : formatCount(status.queues.filter((q) => q.kind === kind).reduce((sum, q) => sum + q.count, 0));
    replace(
      body,
      unknown.length
        ? h("p", { class: "alert warn", "data-testid": "recovery-unknown" }, "Some figures are unknown: storage did not answer for them just now.")
        : null,
      h(
        "dl",
        { class: "facts" },
        h("dt", {}, "Waiting for recovery"),
        h("dd", { "data-testid": "recovery-count" }, total("recovery")),
        h("dt", {}, "Poisoned"),
        h("dd", { "data-testid": "poison-count" }, total("poison")),
        h("dt", {}, "Backend"),
        h("dd", {}, status.backend === "servicebus" ? "Service Bus" : "Storage queue"),
      ),
      status.queues.length || !unknownKinds.size ? queueTable(status.queues) : null,
      h("h3", {}, "Last sweep"),
      unknown.includes("last_sweep") ? h("p", { class: "muted", "data-testid": "last-sweep" }, "unknown") : sweepFacts(status.last_sweep),
      // Replaying is an operator's; anyone may refresh.
      h("div", { class: "toolbar" }, can(ROLES.operator) ? replay : null, h("button", { type: "button", onclick: () => load() }, "Refresh")),
    );
  }

  async function runReplay() {
    replay.disabled = true;
    replay.textContent = "Replaying…";
    try {
      const result = await api.replay();
      if (disposed) return;
      notify(
        result.healthy
          ? `Recovery sweep done: ${formatCount(result.reinserted)} reinserted, ${formatCount(result.gave_up)} gave up, ${formatCount(result.errors)} errors.`
          : `Recovery sweep skipped: ${result.reason || "the flow is not healthy"}.`,
        result.healthy ? "ok" : "warn",
      );
      await load();
    } catch (error) {
      if (!disposed) replace(body, errorBlock(`Replay failed: ${userMessage(error)}`, h("button", { type: "button", class: "small", onclick: () => load() }, "Retry")));
    } finally {
      replay.disabled = false;
      replay.textContent = "Replay now";
    }
  }

  // The page loads it, and reloads it with its auto-refresh.
  return {
    load,
    destroy() {
      disposed = true;
    },
  };
}

function queueTable(queues) {
  if (queues.length === 0) return h("p", { class: "muted" }, "No queues reported.");
  return h(
    "table",
    { class: "compact" },
    h("caption", { class: "visually-hidden" }, "Recovery and poison queues"),
    h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Queue"), h("th", { scope: "col", class: "num" }, "Messages"))),
    h(
      "tbody",
      {},
      queues.map((queue) =>
        h(
          "tr",
          {},
          h(
            "th",
            { scope: "row" },
            h("span", { class: "queue-name" }, queue.name),
            h("span", { class: "queue-meta" }, h("span", { class: "badge" }, queue.kind), oldest(queue.oldest_age_s)),
          ),
          h("td", { class: "num", dataset: { queue: queue.kind } }, formatCount(queue.count)),
        ),
      ),
    ),
  );
}

function oldest(ageS) {
  return ageS === null || ageS === undefined ? null : ` oldest ${formatDuration(ageS)}`;
}

function sweepFacts(sweep) {
  if (!sweep) return h("p", { class: "muted", "data-testid": "last-sweep" }, "No sweep has run yet.");
  return h(
    "dl",
    { class: "facts", "data-testid": "last-sweep" },
    h("dt", {}, "Finished"),
    h("dd", {}, timeElement(sweep.finished_at), h("span", { class: "muted" }, `(${formatAgo(sweep.finished_at)}, ${sweep.trigger})`)),
    h("dt", {}, "Health"),
    h("dd", {}, sweep.healthy ? "healthy" : `unhealthy${sweep.reason ? `: ${sweep.reason}` : ""}`),
    h("dt", {}, "Reinserted"),
    h("dd", {}, formatCount(sweep.reinserted)),
    h("dt", {}, "Gave up"),
    h("dd", {}, formatCount(sweep.gave_up)),
    h("dt", {}, "Errors"),
    h("dd", {}, formatCount(sweep.errors)),
    sweep.jobs_resumed ? [h("dt", {}, "Jobs resumed"), h("dd", {}, formatCount(sweep.jobs_resumed))] : null,
  );
}
