// Mute and Unmute for one failure group (an operator's): a muted group is a known, accepted kind of
// failure, left out of the overview counts and the alerts until unmuted (or until a chosen time).
// The groups panel places `muteControl(group)` in each group's row; `onChanged()` reloads the panel.

import { api } from "../api.js";
import { h, uid } from "../dom.js";
import { openDialog } from "../dialogs.js";
import { formatTime } from "../format.js";
import { notify, notifyError } from "../notices.js";

const DURATIONS = [
  ["", "Until unmuted"],
  ["1", "For 1 hour"],
  ["24", "For 24 hours"],
  ["168", "For 7 days"],
];

/** "Muted by ada until 14:00: known outage" */
export function describeMute(mute) {
  const until = mute.until ? ` until ${formatTime(mute.until)}` : "";
  return `Muted by ${mute.by}${until}: ${mute.reason}`;
}

export function muteControl(integration, group, { onChanged }) {
  if (group.muted) {
    return h(
      "button",
      {
        type: "button",
        class: "small",
        "data-testid": "unmute",
        "aria-label": `Unmute group ${group.sample_reason}`,
        onclick: async () => {
          try {
            await api.unmuteGroup(integration, group.group);
            notify("Group unmuted: it counts again.");
            onChanged();
          } catch (error) {
            notifyError(`Could not unmute: ${error.message}`);
          }
        },
      },
      "Unmute",
    );
  }
  return h(
    "button",
    { type: "button", class: "small", "data-testid": "mute", "aria-label": `Mute group ${group.sample_reason}`, onclick: () => askMute(integration, group, onChanged) },
    "Mute",
  );
}

function askMute(integration, group, onChanged) {
  const reasonId = uid("mute-reason");
  const forId = uid("mute-for");
  const reason = h("input", { id: reasonId, type: "text", required: true, maxlength: "500", autocomplete: "off", "data-testid": "mute-reason" });
  const duration = h("select", { id: forId, "data-testid": "mute-for" }, DURATIONS.map(([value, label]) => h("option", { value }, label)));
  const problem = h("p", { class: "error", role: "alert", hidden: true });
  const form = h(
    "form",
    { id: uid("mute-form") },
    h("p", {}, "Its failures stay listed, but leave the overview counts and the alerts."),
    h("div", { class: "field" }, h("label", { for: reasonId }, "Why"), reason),
    h("div", { class: "field" }, h("label", { for: forId }, "How long"), duration),
    problem,
  );
  const submit = h("button", { type: "submit", class: "primary", form: form.id, "data-testid": "mute-confirm" }, "Mute");
  const cancel = h("button", { type: "button", onclick: () => modal.close("cancel") }, "Cancel");
  const modal = openDialog({ title: "Mute this failure group", body: form, actions: [cancel, submit] });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const hours = Number(duration.value);
    const until = hours ? new Date(Date.now() + hours * 3600_000).toISOString() : null;
    submit.disabled = true;
    try {
      await api.muteGroup(integration, group.group, reason.value.trim(), until);
      modal.close("muted");
      notify("Group muted.");
      onChanged();
    } catch (error) {
      problem.textContent = error.message;
      problem.hidden = false;
      submit.disabled = false;
    }
  });
  reason.focus();
}
