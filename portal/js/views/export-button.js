// Export: the failures matching the page's filters as CSV or NDJSON, downloaded as a file. The API
// builds at most 5,000 rows per request; when it says more are left, the note says so (narrow the
// filters, or continue from the API with its cursor).

import { api } from "../api.js";
import { apiFilters } from "../route.js";
import { h, uid } from "../dom.js";
import { formatCount } from "../format.js";
import { notify, notifyError } from "../notices.js";

export function createExportButton(integration) {
  let filters = {};
  const formatId = uid("export-format");
  const format = h(
    "select",
    { id: formatId, "data-testid": "export-format" },
    h("option", { value: "csv" }, "CSV"),
    h("option", { value: "ndjson" }, "NDJSON"),
  );
  const button = h("button", { type: "button", "data-testid": "export", onclick: () => run() }, "Export");
  const element = h(
    "div",
    { class: "export", role: "group", "aria-label": "Export the failures shown" },
    h("label", { for: formatId, class: "visually-hidden" }, "Export format"),
    format,
    button,
  );

  async function run() {
    button.disabled = true;
    button.textContent = "Exporting…";
    try {
      const { blob, headers } = await api.exportFailures(integration, apiFilters(filters), format.value); // a quick range as its `from`
      const name = (headers.get("content-disposition") || "").match(/filename="([^"]+)"/)?.[1] ?? `failures-${integration}.${format.value}`;
      const href = URL.createObjectURL(blob);
      const link = h("a", { href, download: name, hidden: true });
      document.body.append(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(href), 60_000);
      const rows = Number(headers.get("x-export-rows") || 0);
      if (headers.get("x-export-truncated") === "true") {
        notify(`Exported the first ${formatCount(rows)} failures; more match. Narrow the filters to export the rest.`, "warn");
      } else {
        notify(`Exported ${formatCount(rows)} failures.`);
      }
    } catch (error) {
      notifyError(`Could not export: ${error.message}`);
    } finally {
      button.disabled = false;
      button.textContent = "Export";
    }
  }

  return {
    element,
    setFilters(next) {
      filters = next;
    },
  };
}
