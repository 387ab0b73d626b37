// "Find a message": one box that takes a message id or a correlation id (the API's `ref` filter,
// exact) and puts it into the page's filters, so the URL can be shared. Self-contained: the page
// gives it `onFind(ref | null)` and tells it the current filters.

import { h, uid } from "../dom.js";

export function createFindBox({ onFind }) {
  const id = uid("find");
  const hintId = `${id}-hint`;
  const input = h("input", {
    id,
    type: "search",
    name: "ref",
    autocomplete: "off",
    spellcheck: "false",
    maxlength: "256",
    placeholder: "order-4711 or a correlation id",
    "aria-describedby": hintId,
    "data-testid": "find-input",
  });
  const clear = h("button", { type: "button", hidden: true, onclick: () => onFind(null), "data-testid": "find-clear" }, "Show all");
  const form = h(
    "form",
    { class: "find-box", role: "search", "aria-label": "Find a message", "data-testid": "find-box" },
    h("label", { for: id }, "Find a message"),
    h("div", { class: "find-row" }, input, h("button", { type: "submit", class: "primary" }, "Find"), clear),
    h("span", { class: "hint", id: hintId }, "Its message id or correlation id, exactly as sent."),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    onFind(input.value.trim() || null);
  });
  return {
    element: form,
    setFilters(filters) {
      input.value = filters.ref ?? "";
      clear.hidden = !filters.ref;
    },
  };
}
