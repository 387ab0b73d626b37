// The overview: every integration with failures, most recent failure first, each a link to
// its failures page; integrations without failures below; the recovery panel beside. It reloads
// itself every 15 s (refresh.js); a call that fails shows its figures as unknown, never as zero.

import { api, userMessage } from "../api.js";
import { h, replace } from "../dom.js";
import { formatCount, timeElement } from "../format.js";
import { errorBlock } from "../notices.js";
import { createAutoRefresh } from "../refresh.js";
import { integrationHref, settingsHref } from "../route.js";
import { mountActivityPanel } from "./activity.js";
import { mountRecoveryPanel } from "./recovery.js";

export function mountOverview(main) {
  const tableCard = h("section", { class: "card", "aria-labelledby": "overview-title" });
  const others = h("section", { class: "card", "aria-labelledby": "others-title" });
  const side = h("div", { class: "side" });
  const refresh = h("button", { type: "button", onclick: () => reloadAll() }, "Refresh");
  const autoRefresh = createAutoRefresh({ onTick: () => reloadAll() });
  replace(
    main,
    h(
      "div",
      { class: "page-head" },
      h("h1", { tabindex: "-1" }, "Failures"),
      h("span", { class: "sub" }, "Integrations whose messages could not be delivered, most recent first."),
      h("div", { class: "actions" }, autoRefresh.element, refresh),
    ),
    h("div", { class: "layout" }, h("div", { class: "stack" }, tableCard, others), side),
  );
  const recovery = mountRecoveryPanel(side);
  const activity = mountActivityPanel(side);
  let disposed = false;

  let loaded = false; // the first load says "Loading…"; later ones swap the content when it arrives

  async function load() {
    if (!loaded) replace(tableCard, h("h2", { id: "overview-title" }, "Integrations with failures"), h("p", { class: "muted" }, "Loading…"));
    // The configs list is a nicety (names the quiet integrations): it never blocks the counts.
    const [overview, configs] = await Promise.allSettled([api.overview(), api.integrations().then((data) => data.items)]);
    if (disposed) return false;
    loaded = true;
    if (overview.status === "rejected") {
      const unknown = `Failure counts are unknown: ${userMessage(overview.reason)}`;
      replace(tableCard, h("h2", { id: "overview-title" }, "Integrations with failures"), errorBlock(unknown));
      tableCard.dataset.state = "unknown";
      replace(others, h("h2", { id: "others-title" }, "Integrations without failures"), h("p", { class: "muted", "data-testid": "others-unknown" }, "Unknown until the failure counts load."));
      return false;
    }
    tableCard.dataset.state = "loaded";
    const items = [...overview.value.items].sort((a, b) => (b.last_failed_at ?? "").localeCompare(a.last_failed_at ?? ""));
    replace(tableCard, h("h2", { id: "overview-title" }, "Integrations with failures"), overviewTable(items));
    if (configs.status === "rejected") {
      replace(others, h("h2", { id: "others-title" }, "Integrations without failures"), h("p", { class: "muted", "data-testid": "others-unknown" }, `Unknown: the configured integrations could not be listed. ${userMessage(configs.reason)}`));
      return false;
    }
    renderOthers(configs.value, new Set(items.map((item) => item.integration)));
    return true;
  }

  async function reloadAll() {
    const results = await Promise.all([load(), recovery.load(), activity.load()]);
    if (!disposed && results.every(Boolean)) autoRefresh.done();
  }

  function renderOthers(configs, withFailures) {
    const quiet = configs.filter((config) => !withFailures.has(config.id));
    replace(
      others,
      h("h2", { id: "others-title" }, "Integrations without failures"),
      quiet.length === 0
        ? h("p", { class: "muted" }, configs.length ? "Every integration has failures listed above." : "No integrations are configured.")
        : h(
            "ul",
            { class: "plain-list" },
            quiet.map((config) =>
              h(
                "li",
                {},
                h("a", { href: integrationHref(config.id) }, config.name || config.id),
                config.name && config.name !== config.id ? [" ", h("span", { class: "muted" }, `(${config.id})`)] : null,
                " · ",
                h("a", { href: settingsHref(config.id) }, "Settings"),
              ),
            ),
          ),
    );
  }

  reloadAll();
  return {
    refresh: reloadAll,
    destroy() {
      disposed = true;
      autoRefresh.destroy();
      recovery.destroy();
      activity.destroy();
    },
  };
}

function overviewTable(items) {
  if (items.length === 0) {
    return h("p", { class: "empty", "data-testid": "overview-empty" }, "No failures. Every message was delivered.");
  }
  return h(
    "div",
    { class: "table-wrap" },
    h(
      "table",
      { "data-testid": "overview-table" },
      h("caption", { class: "visually-hidden" }, "Integrations with failures, most recent failure first"),
      h(
        "thead",
        {},
        h(
          "tr",
          {},
          h("th", { scope: "col" }, "Integration"),
          h("th", { scope: "col", class: "num" }, "Failures"),
          h("th", { scope: "col", class: "num" }, "Held"),
          h("th", { scope: "col" }, "By origin"),
          h("th", { scope: "col" }, "First failure"),
          h("th", { scope: "col" }, "Last failure"),
        ),
      ),
      h(
        "tbody",
        {},
        items.map((item) =>
          h(
            "tr",
            { dataset: { integration: item.integration } },
            h("th", { scope: "row" }, h("a", { href: integrationHref(item.integration) }, item.integration)),
            h("td", { class: "num" }, formatCount(item.count)),
            h("td", { class: "num", "data-testid": "overview-held" }, item.held ? formatCount(item.held) : "—"),
            h(
              "td",
              {},
              h(
                "span",
                { class: "badges" },
                Object.entries(item.by_origin ?? {})
                  .filter(([, count]) => count > 0)
                  .sort((a, b) => b[1] - a[1])
                  .map(([origin, count]) => h("span", { class: `badge ${origin}` }, `${origin} ${formatCount(count)}`)),
              ),
            ),
            h("td", { class: "time" }, timeElement(item.first_failed_at)),
            h("td", { class: "time" }, timeElement(item.last_failed_at)),
          ),
        ),
      ),
    ),
  );
}
