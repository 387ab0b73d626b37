// Building DOM without innerHTML: failure reasons, headers and content come from whoever sent
// the message, so every piece of data becomes a text node, never markup.

/**
 * h("button", {class: "primary", onclick: fn, disabled: true}, "Retry")
 * Attributes are set with setAttribute (true → present, false/null/undefined → absent);
 * `class`, `dataset` and `on<event>` handlers are special. Children may be nodes, strings,
 * numbers, arrays, or null/false (skipped).
 */
export function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes ?? {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "class") element.className = value;
    else if (name === "dataset") Object.assign(element.dataset, value);
    else if (name.startsWith("on") && typeof value === "function") element.addEventListener(name.slice(2), value);
    else element.setAttribute(name, value === true ? "" : String(value));
  }
  append(element, children);
  return element;
}

export function append(parent, children) {
  for (const child of [children].flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    parent.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return parent;
}

/** Replace all children. */
export function replace(parent, ...children) {
  parent.replaceChildren();
  return append(parent, children);
}

let nextId = 0;
/** A document-unique id for label/aria wiring. */
export function uid(prefix = "id") {
  nextId += 1;
  return `${prefix}-${nextId}`;
}

/** A table that may be wider than the screen, in a box that scrolls sideways. The box is a named,
 * focusable region: keyboard users can scroll it too (axe: scrollable-region-focusable). */
export function scrollRegion(label, ...children) {
  return h("div", { class: "table-wrap", role: "region", "aria-label": label, tabindex: "0" }, children);
}
