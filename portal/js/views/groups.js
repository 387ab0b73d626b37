// The failure groups panel: like-failures (same origin, status and normalised reason) with their
// counts. One click filters the page to a group; clicking the active group clears that filter.
// A muted group (issue 19) shows as such; `extra(group)` adds a control beside a group (Mute/Unmute).

import { h, replace } from "../dom.js";
import { formatCount, timeElement } from "../format.js";

export function createGroupsPanel({ onPick, extra = null, describeMuted = null }) {
  const body = h("div", {}, h("p", { class: "muted" }, "Loading…"));
  const element = h(
    "section",
    { class: "card", "aria-labelledby": "groups-title", "data-testid": "groups-panel" },
    h("h2", { id: "groups-title" }, "Failure groups"),
    h("p", { class: "muted" }, "Like failures across this integration. Choose one to filter the list."),
    body,
  );

  function render(groups, activeGroup) {
    if (groups.length === 0) {
      replace(body, h("p", { class: "muted" }, "No groups: nothing has failed."));
      return;
    }
    replace(
      body,
      h(
        "ul",
        { class: "groups" },
        groups.map((group) =>
          h(
            "li",
            { class: group.muted ? "muted-group" : null, dataset: { muted: String(Boolean(group.muted)) } },
            h(
              "button",
              {
                type: "button",
                "aria-pressed": String(group.group === activeGroup),
                dataset: { group: group.group },
                onclick: () => onPick(group.group === activeGroup ? null : group.group),
              },
              h("span", {}, h("span", { class: `badge ${group.origin}` }, group.origin), group.status_code ? ` ${group.status_code}` : ""),
              h("span", { class: "count" }, formatCount(group.count), h("span", { class: "visually-hidden" }, " failures")),
              h("span", { class: "reason" }, group.sample_reason),
              h("span", { class: "reason" }, "last ", timeElement(group.last_failed_at)),
              group.muted && describeMuted ? h("span", { class: "reason", "data-testid": "muted-note" }, describeMuted(group.muted)) : null,
            ),
            extra ? extra(group) : null,
          ),
        ),
      ),
    );
  }

  return {
    element,
    render,
    showError(message) {
      replace(body, h("p", { class: "alert", role: "alert" }, `Failure groups unknown: ${message}`));
    },
  };
}
