// What an operator can do from a failure's detail dialog: Retry it, Delete it, or Edit and retry
// (correct the body, content type or headers, then send it again under a new message id). Retry and
// Delete start a job for this one failure (the same jobs as the page's buttons); Edit and retry
// calls its own route. `onJob(job)` hands a started job to the page, `onSent()` says the failure is
// gone, `close()` closes the dialog.

import { api } from "../api.js";
import { h, replace, uid } from "../dom.js";
import { confirmAction } from "../dialogs.js";
import { notify } from "../notices.js";

export function createFailureActions(integration, failure, content, { onJob, onSent, close }) {
  const status = h("p", { class: "muted", "aria-live": "polite", "data-testid": "detail-action-status" });
  const pickup = failure.origin === "pickup";
  const retry = h("button", { type: "button", class: "primary", disabled: pickup, onclick: () => startJob("retry") }, "Retry");
  const remove = h("button", { type: "button", class: "danger", onclick: () => startJob("delete") }, "Delete");
  const edit = h("button", { type: "button", disabled: pickup || (content && content.encoding !== "text"), onclick: () => openEditor() }, "Edit and retry");
  const editor = h("div", { hidden: true, "data-testid": "edit-retry" });
  const element = h(
    "section",
    { "aria-label": "Actions", class: "detail-actions" },
    h("div", { class: "toolbar", role: "group", "aria-label": "Failure actions" }, retry, edit, remove),
    pickup ? h("p", { class: "muted" }, "A pickup failure has no message to retry or edit.") : null,
    status,
    editor,
  );

  async function startJob(action) {
    if (action === "delete") {
      const sure = await confirmAction({
        title: "Delete this failure?",
        message: "Its record and content are removed; the message is not sent.",
        confirmLabel: "Delete",
        danger: true,
      });
      if (!sure) return;
    }
    setBusy(true);
    try {
      const job = await api.startJob(integration, action, { ids: [failure.id] });
      onJob(job);
      notify(action === "retry" ? "Retry started for this failure." : "Delete started for this failure.");
      close();
    } catch (error) {
      status.textContent = error.status === 409 ? "Another job is running for this integration; try again when it ends." : error.message;
      setBusy(false);
    }
  }

  function openEditor() {
    const bodyId = uid("edit-body");
    const typeId = uid("edit-type");
    const headersId = uid("edit-headers");
    const body = h("textarea", { id: bodyId, rows: "10", spellcheck: "false", class: "code", "data-testid": "edit-body" });
    body.value = content?.data ?? "";
    const type = h("input", { id: typeId, type: "text", autocomplete: "off", "data-testid": "edit-content-type" });
    type.value = content?.content_type ?? failure.content_type ?? "";
    const headers = h("textarea", { id: headersId, rows: "3", spellcheck: "false", class: "code", "data-testid": "edit-headers" });
    headers.value = Object.entries(failure.headers ?? {})
      .map(([name, value]) => `${name}: ${value}`)
      .join("\n");
    const problem = h("p", { class: "error", role: "alert", hidden: true, "data-testid": "edit-error" });
    const send = h("button", { type: "submit", class: "primary", "data-testid": "edit-send" }, "Send edited message");
    const cancel = h("button", { type: "button", onclick: () => (editor.hidden = true) }, "Cancel");
    const form = h(
      "form",
      { class: "edit-form", "aria-label": "Edit and retry" },
      h("div", { class: "field wide" }, h("label", { for: bodyId }, "Body"), body),
      h("div", { class: "field" }, h("label", { for: typeId }, "Content type"), type),
      h(
        "div",
        { class: "field wide" },
        h("label", { for: headersId }, "X- headers, one “Name: value” a line"),
        headers,
      ),
      h("p", { class: "muted" }, "It goes out under a new message id (the correlation id stays); the failure is removed once it is queued. The audit trail keeps the change."),
      problem,
      h("div", { class: "buttons" }, send, cancel),
    );
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      problem.hidden = true;
      const parsed = parseHeaders(headers.value);
      if (parsed.error) {
        showProblem(parsed.error);
        return;
      }
      send.disabled = true;
      try {
        const answer = await api.editRetry(integration, failure.id, {
          body_text: body.value,
          content_type: type.value.trim() || null,
          headers: parsed.headers,
        });
        notify(`Edited message sent as ${answer.message_id}.`);
        onSent();
        close();
      } catch (error) {
        const fields = error.details?.fields;
        const named = fields?.length ? `${fields[0].field}: ${fields[0].message}` : error.message;
        showProblem(named);
        send.disabled = false;
      }
    });
    function showProblem(text) {
      problem.textContent = text;
      problem.hidden = false;
    }
    replace(editor, h("h3", {}, "Edit and retry"), form);
    editor.hidden = false;
    body.focus();
  }

  function setBusy(busy) {
    for (const button of [retry, remove, edit]) button.disabled = busy || (button !== remove && pickup);
  }

  return { element };
}

/** "X-Batch: 7" lines → {"X-Batch": "7"}; a line without a colon is an error naming it. */
export function parseHeaders(text) {
  const headers = {};
  for (const [index, raw] of text.split("\n").entries()) {
    const line = raw.trim();
    if (!line) continue;
    const colon = line.indexOf(":");
    if (colon < 1) return { error: `Header line ${index + 1} needs the form “Name: value”.` };
    headers[line.slice(0, colon).trim()] = line.slice(colon + 1).trim();
  }
  return { headers };
}
