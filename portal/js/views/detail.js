// Failure detail, in a dialog: when, why and where; the content (JSON/XML indented, raw text
// exactly as stored, binary as a download); the headers; the attempt history; copy buttons for
// the ids a person pastes into a ticket or a log search. A text body past 64 KiB shows its start
// with "Show all" and Download; the attempt history scrolls sideways in its own focusable region.

import { api } from "../api.js";
import { h, replace, scrollRegion, uid } from "../dom.js";
import { contentBytes, contentKind, copyText, downloadBytes, downloadName, hexPreview, prettyText } from "../content.js";
import { formatBytes, formatCount, timeElement } from "../format.js";
import { openDialog } from "../dialogs.js";
import { timelineSection } from "./timeline.js";

/** `actions(detail, close)`, when given, adds what the caller may do with it (Retry, Delete, Edit and retry). */
export function openFailureDetail(integration, failure, { actions = null } = {}) {
  const body = h("div", { "data-testid": "failure-detail" }, h("p", { class: "muted" }, "Loading…"));
  const modal = openDialog({ title: `Failure ${failure.id}`, body, wide: true });
  api.failure(integration, failure.id).then(
    (detail) => replace(body, actions ? actions(detail, modal.close) : null, render(detail), timelineSection(integration, detail.failure)),
    (error) =>
      replace(
        body,
        h("p", { class: "alert", role: "alert" }, error.status === 404 ? "This failure is gone (retried or deleted meanwhile)." : error.message),
      ),
  );
}

function render({ failure, content }) {
  return [
    h("section", { "aria-label": "Summary" }, facts(failure)),
    h("section", { "aria-labelledby": "detail-content" }, h("h3", { id: "detail-content" }, "Content"), contentSection(failure, content)),
    h(
      "section",
      { "aria-labelledby": "detail-headers" },
      h("h3", { id: "detail-headers" }, "Headers"),
      overflowNote(failure.overflow ?? []),
      headersTable(failure.headers ?? {}),
    ),
    h(
      "section",
      { "aria-labelledby": "detail-history" },
      h("h3", { id: "detail-history" }, "Attempt history"),
      historyTable(failure.history ?? [], failure.attempts),
    ),
  ];
}

function copyButton(text, what, { small = true } = {}) {
  const button = h("button", { type: "button", class: small ? "small" : null, "aria-label": `Copy ${what}` }, "Copy");
  button.addEventListener("click", async () => {
    const copied = await copyText(text);
    button.textContent = copied ? "Copied" : "Copy failed";
    setTimeout(() => {
      button.textContent = "Copy";
    }, 1500);
  });
  return button;
}

/** Two columns: what happened on the left, counters and ids on the right. */
function facts(failure) {
  const what = [
    ["Failed at", timeElement(failure.failed_at)],
    ["Reason", failure.reason],
    ["Origin", h("span", { class: `badge ${failure.origin}` }, failure.origin)],
    ["Status code", failure.status_code ?? "—"],
    ["Sender", failure.sender ?? "—"],
    ["Receiver", failure.receiver ?? "—"],
    ["Received at", timeElement(failure.received_at)],
    ["Group", h("code", {}, failure.group)],
  ];
  const ids = [
    ["Attempts", formatCount(failure.attempts)],
    ["Delay actions", formatCount(failure.delay_actions)],
    ["Resends", formatCount(failure.resend_count)],
    ["Recoveries", formatCount(failure.recovery_count)],
    ["Message id", [h("code", { "data-testid": "message-id" }, failure.message_id), copyButton(failure.message_id, "message id")]],
    [
      "Correlation id",
      failure.correlation_id
        ? [h("code", { "data-testid": "correlation-id" }, failure.correlation_id), copyButton(failure.correlation_id, "correlation id")]
        : "—",
    ],
    ["Failure id", [h("code", {}, failure.id), copyButton(failure.id, "failure id")]],
  ];
  const list = (rows) => h("dl", { class: "facts" }, rows.map(([label, value]) => [h("dt", {}, label), h("dd", {}, value)]));
  return h("div", { class: "fact-columns" }, list(what), list(ids));
}

function contentSection(failure, content) {
  if (!content && failure.origin === "pickup") {
    return h("p", { class: "muted" }, "A pickup failure records a source that kept failing, not a message: it has no content, and nothing to retry. Delete it once the cause is fixed; the source is tried again at every interval.");
  }
  if (!content) {
    return h("p", { class: "muted" }, "No content is stored for this failure (the payload was empty, removed or never kept).");
  }
  const bytes = contentBytes(content);
  const meta = h(
    "p",
    { class: "muted" },
    `${content.content_type || "no content type"} · ${formatBytes(content.size_bytes)}${content.encoding === "base64" ? " · binary" : ""}`,
  );
  const download = h(
    "button",
    { type: "button", onclick: () => downloadBytes(bytes, downloadName(failure, content), content.content_type) },
    "Download",
  );
  if (content.encoding === "base64") {
    return [
      meta,
      h("div", { class: "toolbar" }, download),
      h("p", {}, "Binary content: download it to open it. The first bytes:"),
      h("pre", { class: "content", "data-testid": "content-hex" }, hexPreview(bytes)),
    ];
  }
  const kind = contentKind(content.content_type, content.data);
  const pretty = prettyText(kind, content.data);
  const rawPanel = h("pre", { class: "content", "data-testid": "content-raw", tabindex: "0" });
  const copy = copyButton(content.data, "content", { small: false });
  const prettyPanel = pretty === null || pretty === content.data ? null : h("pre", { class: "content", "data-testid": "content-pretty", tabindex: "0" });
  const cut = shownInPart([[rawPanel, content.data], [prettyPanel, pretty]], content, download);
  if (!prettyPanel) {
    return [meta, cut, h("div", { class: "toolbar" }, h("span", { class: "spacer" }), copy, download), rawPanel];
  }
  return [meta, cut, tabs([["Formatted", prettyPanel], ["As received", rawPanel]], [copy, download])];
}

/** Text shown at first: more than this is cut (rendering megabytes freezes the tab); Copy and Download take it all. */
export const SHOWN_CHARS = 64 * 1024;

/** Fill each panel with its text, cut at SHOWN_CHARS; returns the note with "Show all" when anything was cut. */
function shownInPart(panels, content, download) {
  const cutAny = panels.some(([panel, text]) => panel && text.length > SHOWN_CHARS);
  for (const [panel, text] of panels) if (panel) panel.textContent = cutAny ? text.slice(0, SHOWN_CHARS) : text;
  if (!cutAny) return null;
  const showAll = h("button", { type: "button", "data-testid": "show-all" }, "Show all");
  const downloadAll = h("button", { type: "button", onclick: () => download.click() }, "Download");
  const note = h(
    "div",
    { class: "alert warn cut-note", "data-testid": "content-cut" },
    h("span", {}, `Showing the first ${formatBytes(SHOWN_CHARS)} of ${formatBytes(content.size_bytes)}. Copy and Download take all of it.`),
    h("span", { class: "buttons" }, showAll, downloadAll),
  );
  showAll.addEventListener("click", () => {
    for (const [panel, text] of panels) if (panel) panel.textContent = text;
    note.remove();
  });
  return note;
}

/** Two or more views of one thing: ARIA tabs, arrow keys move between them. */
function tabs(entries, tools) {
  const tabButtons = [];
  const panels = [];
  entries.forEach(([label, panel], index) => {
    const tabId = uid("tab");
    const panelId = uid("panel");
    const tab = h("button", { type: "button", role: "tab", id: tabId, "aria-controls": panelId }, label);
    tab.addEventListener("click", () => select(index));
    tab.addEventListener("keydown", (event) => {
      if (event.key === "ArrowRight" || event.key === "ArrowLeft") {
        const next = (index + (event.key === "ArrowRight" ? 1 : entries.length - 1)) % entries.length;
        select(next);
        tabButtons[next].focus();
      }
    });
    tabButtons.push(tab);
    panels.push(h("div", { role: "tabpanel", id: panelId, "aria-labelledby": tabId }, panel));
  });
  function select(selected) {
    tabButtons.forEach((tab, index) => {
      tab.setAttribute("aria-selected", String(index === selected));
      tab.tabIndex = index === selected ? 0 : -1;
      panels[index].hidden = index !== selected;
    });
  }
  select(0);
  return [h("div", { class: "toolbar" }, h("div", { role: "tablist", "aria-label": "Content view" }, tabButtons), h("span", { class: "spacer" }), tools), panels];
}

// Credential headers show as *** and fields past the storage limits are shortened; a retry sends them whole.
function overflowNote(fields) {
  if (fields.length === 0) return null;
  return h(
    "p",
    { class: "muted", "data-testid": "overflow-note" },
    `Masked or shortened here: ${fields.join(", ")}. A retry sends the whole values, which are kept with the content.`,
  );
}

function headersTable(headers) {
  const entries = Object.entries(headers);
  if (entries.length === 0) return h("p", { class: "muted" }, "No headers.");
  return h(
    "table",
    {},
    h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Name"), h("th", { scope: "col" }, "Value"))),
    h("tbody", {}, entries.map(([name, value]) => h("tr", {}, h("th", { scope: "row" }, h("code", {}, name)), h("td", {}, h("code", {}, value))))),
  );
}

function historyTable(history, attempts) {
  if (history.length === 0) return h("p", { class: "muted" }, "No attempts recorded.");
  const older = attempts > history.length ? h("p", { class: "muted" }, `The newest ${history.length} of ${formatCount(attempts)} attempts.`) : null;
  return [
    older,
    scrollRegion(
      "Attempts table",
      h(
        "table",
        { "data-testid": "history-table" },
        h(
          "thead",
          {},
          h(
            "tr",
            {},
            ["When", "Engine run", "Endpoint attempt", "Target", "Status", "Outcome", "Duration"].map((label) => h("th", { scope: "col" }, label)),
          ),
        ),
        h(
          "tbody",
          {},
          history.map((attempt) =>
            h(
              "tr",
              {},
              h("td", { class: "time" }, timeElement(attempt.at)),
              h("td", { class: "num" }, formatCount(attempt.engine_attempt)),
              h("td", { class: "num" }, formatCount(attempt.endpoint_attempt)),
              h("td", {}, h("code", {}, attempt.target || "—")),
              h("td", { class: "num" }, attempt.status_code ?? "—"),
              h("td", {}, attempt.outcome),
              h("td", { class: "num" }, `${Math.round(attempt.duration_ms)} ms`),
            ),
          ),
        ),
      ),
    ),
  ];
}
