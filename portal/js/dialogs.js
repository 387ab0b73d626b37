// Modal dialogs on the native <dialog>: showModal() makes the rest of the page inert, moves
// focus in, and closes on Escape. We add the title wiring, a close button, closing on a
// backdrop click, and returning focus to whatever opened the dialog.

import { h, uid } from "./dom.js";

/**
 * Open a modal. `body` and `actions` are nodes; returns {dialog, close}.
 * `onClose(returnValue)` runs after it closed (by a button, Escape or the backdrop).
 */
export function openDialog({ title, body, actions = [], wide = false, onClose = () => {} }) {
  const titleId = uid("dialog-title");
  const opener = document.activeElement;
  const dialog = h(
    "dialog",
    { class: wide ? "wide" : null, "aria-labelledby": titleId },
    h(
      "div",
      { class: "dialog-head" },
      h("h2", { id: titleId }, title),
      h("button", { type: "button", class: "close small", "aria-label": "Close", onclick: () => dialog.close("close") }, "✕"),
    ),
    h("div", { class: "dialog-body" }, body),
    actions.length ? h("div", { class: "dialog-foot" }, actions) : null,
  );
  dialog.addEventListener("click", (event) => {
    if (event.target === dialog) dialog.close("backdrop"); // a click outside the content box
  });
  dialog.addEventListener("close", () => {
    dialog.remove();
    if (opener instanceof HTMLElement && opener.isConnected) opener.focus();
    onClose(dialog.returnValue);
  });
  document.body.append(dialog);
  dialog.showModal();
  return { dialog, close: (value = "") => dialog.close(value) };
}

/**
 * Ask before doing something. Resolves true when confirmed, false on Cancel, Escape or backdrop.
 * Destructive actions get the focus on Cancel, so a stray Enter does not delete anything.
 */
export function confirmAction({ title, message, confirmLabel, danger = false }) {
  return new Promise((resolve) => {
    const cancel = h("button", { type: "button", autofocus: danger, onclick: () => modal.close("cancel") }, "Cancel");
    const confirm = h(
      "button",
      {
        type: "button",
        class: danger ? "danger" : "primary",
        autofocus: !danger,
        "data-testid": "confirm",
        onclick: () => modal.close("confirm"),
      },
      confirmLabel,
    );
    const modal = openDialog({
      title,
      body: message,
      actions: [cancel, confirm],
      onClose: (value) => resolve(value === "confirm"),
    });
  });
}
