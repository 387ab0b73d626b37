// "Find a message": one box for a message id or a correlation id (the API's `ref` filter, exact), or,
// switched to "Text in the body", for text inside the message bodies (`body_contains`: each request
// reads at most 500 bodies, so matches come page by page). Either becomes a filter in the URL, so a
// search can be shared. Self-contained: the page gives it `onFind({ref, body_contains})` and tells
// it the current filters.

import { h, uid } from "../dom.js";

const MODES = [
  ["ref", "Message or correlation id", "order-4711 or a correlation id", "Exactly as sent."],
  ["body_contains", "Text in the body", "PO-4711", "Text bodies, any case; searched page by page, so it takes longer."],
];

export function createFindBox({ onFind }) {
  const id = uid("find");
  const hintId = `${id}-hint`;
  const input = h("input", {
    id,
    type: "search",
    autocomplete: "off",
    spellcheck: "false",
    maxlength: "200",
    "aria-describedby": hintId,
    "data-testid": "find-input",
  });
  const hint = h("span", { class: "hint", id: hintId });
  const group = uid("find-mode");
  const radios = MODES.map(([value, label]) => {
    const radio = h("input", { type: "radio", name: group, value, "data-testid": `find-mode-${value}` });
    radio.addEventListener("change", () => showMode(value));
    return [radio, h("label", { class: "check" }, radio, label)];
  });
  const clear = h("button", { type: "button", hidden: true, onclick: () => onFind({}), "data-testid": "find-clear" }, "Show all");
  const form = h(
    "form",
    { class: "find-box", role: "search", "aria-label": "Find a message", "data-testid": "find-box" },
    h("label", { for: id }, "Find a message"),
    h("div", { class: "find-modes", role: "radiogroup", "aria-label": "Search in" }, radios.map(([, label]) => label)),
    h("div", { class: "find-row" }, input, h("button", { type: "submit", class: "primary" }, "Find"), clear),
    hint,
  );

  function mode() {
    return radios.find(([radio]) => radio.checked)?.[0].value ?? "ref";
  }

  function showMode(value) {
    const [, , placeholder, text] = MODES.find(([key]) => key === value);
    input.placeholder = placeholder;
    hint.textContent = text;
    for (const [radio] of radios) radio.checked = radio.value === value;
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const text = input.value.trim();
    onFind(text ? { [mode()]: text } : {});
  });
  showMode("ref");

  return {
    element: form,
    setFilters(filters) {
      const active = filters.body_contains ? "body_contains" : "ref";
      showMode(active);
      input.value = filters[active] ?? "";
      clear.hidden = !filters.ref && !filters.body_contains;
    },
  };
}
