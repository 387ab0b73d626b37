// The failures table: newest first, one row per failure with a selection checkbox (for those who
// may act on failures); the reason opens the detail. The table only draws; what is selected lives
// in selection.js. Below 600 px CSS lays each row out as a card (the cells' data-label names them);
// the reason shows two lines, and all of it on hover (title) or keyboard focus.

import { h } from "../dom.js";
import { formatCount, formatTime, timeElement } from "../format.js";

const COLUMNS = [
  ["Time", ""],
  ["Reason", ""],
  ["Origin", ""],
  ["Sender", ""],
  ["Receiver", ""],
  ["Status", "num"],
  ["Attempts", "num"],
  ["Resends", "num"],
];

export function createFailuresTable({ onToggle, onToggleLoaded, onOpen, selectable = true }) {
  const headCheck = h("input", {
    type: "checkbox",
    "aria-label": "Select all loaded rows",
    onchange: (event) => onToggleLoaded(event.target.checked),
  });
  const body = h("tbody", {});
  const table = h(
    "table",
    { "data-testid": "failures-table" },
    h("caption", { class: "visually-hidden" }, "Failures, newest first"),
    h(
      "thead",
      {},
      h(
        "tr",
        {},
        selectable ? h("th", { scope: "col" }, headCheck) : null,
        COLUMNS.map(([label, className]) => h("th", { scope: "col", class: className || null }, label)),
      ),
    ),
    body,
  );

  const rows = new Map(); // failure id → {row, check}
  let loaded = [];

  /** Draw these rows (a new first page). */
  function setItems(items, selection) {
    rows.clear();
    loaded = [];
    body.replaceChildren();
    appendItems(items, selection);
  }

  /** Add rows below ("load more"); the rows already there, and focus, stay. */
  function appendItems(items, selection) {
    for (const failure of items) {
      if (rows.has(failure.id)) continue;
      const drawn = row(failure);
      rows.set(failure.id, drawn);
      loaded.push(failure);
      body.append(drawn.row);
    }
    sync(selection);
  }

  /** Reflect the selection in place: replacing rows would lose the keyboard focus. */
  function sync({ isSelected, allSelected }) {
    let selectedLoaded = 0;
    if (!selectable) return;
    for (const [id, { row: tr, check }] of rows) {
      const selected = isSelected(id);
      if (selected) selectedLoaded += 1;
      check.checked = selected || allSelected;
      check.disabled = allSelected;
      tr.classList.toggle("selected", selected || allSelected);
    }
    headCheck.disabled = allSelected || loaded.length === 0;
    headCheck.checked = allSelected || (loaded.length > 0 && selectedLoaded === loaded.length);
    headCheck.indeterminate = !allSelected && selectedLoaded > 0 && selectedLoaded < loaded.length;
  }

  function row(failure) {
    const check = h("input", {
      type: "checkbox",
      "aria-label": `Select the failure of ${formatTime(failure.failed_at)}`,
      onchange: (event) => onToggle(failure.id, event.target.checked),
    });
    const cell = (label, className, ...content) => h("td", { class: className, dataset: { label } }, content);
    const tr = h(
      "tr",
      { dataset: { failureId: failure.id } },
      selectable ? h("td", { class: "check" }, check) : null,
      cell("Time", "time", timeElement(failure.failed_at)),
      cell(
        "Reason",
        "reason",
        h("button", { type: "button", class: "link", title: failure.reason, onclick: () => onOpen(failure) }, failure.reason || "(no reason)"),
      ),
      cell("Origin", "origin", h("span", { class: `badge ${failure.origin}` }, failure.origin)),
      cell("Sender", "party", failure.sender ?? "—"),
      cell("Receiver", "party", failure.receiver ?? "—"),
      cell("Status", "num", failure.status_code ?? "—"),
      cell("Attempts", "num", formatCount(failure.attempts)),
      cell("Resends", "num", formatCount(failure.resend_count)),
    );
    return { row: tr, check };
  }

  return { element: h("div", { class: "table-wrap failures" }, table), setItems, appendItems, sync, loadedIds: () => loaded.map((f) => f.id) };
}
