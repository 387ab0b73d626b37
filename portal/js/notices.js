// Messages for the user above the page: successes fade on their own, errors stay until dismissed.
// The container is a polite live region, so screen readers announce them.

import { h } from "./dom.js";

const AUTO_DISMISS_MS = 6000;

function container() {
  return document.getElementById("notices");
}

export function notify(message, kind = "ok") {
  const notice = h(
    "div",
    { class: `notice ${kind}` },
    h("span", {}, message),
    h("button", { type: "button", class: "dismiss small", onclick: () => notice.remove() }, "Dismiss"),
  );
  container().append(notice);
  if (kind === "ok") setTimeout(() => notice.remove(), AUTO_DISMISS_MS);
  return notice;
}

export function notifyError(message) {
  return notify(message, "error");
}

export function clearNotices() {
  container().replaceChildren();
}

/** An inline error block for a panel that could not load. */
export function errorBlock(message, ...extra) {
  return h("div", { class: "alert", role: "alert" }, h("span", {}, message), ...extra);
}
