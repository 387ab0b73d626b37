// The overview: every integration with failures, most recent failure first, each a link to
// its failures page; integrations without failures below; the recovery panel beside.

import { api } from "../api.js";
import { h, replace } from "../dom.js";
import { formatCount, timeElement } from "../format.js";
import { errorBlock } from "../notices.js";
import { integrationHref, settingsHref } from "../route.js";
import { mountActivityPanel } from "./activity.js";
import { mountRecoveryPanel } from "./recovery.js";

export function mountOverview(main) {
  const tableCard = h("section", { class: "card", "aria-labelledby": "overview-title" });
  const others = h("section", { class: "card", "aria-labelledby": "others-title" });
  const side = h("div", { class: "side" });
  const refresh = h("button", { type: "button", onclick: () => { load(); activity.load(); } }, "Refresh");
  replace(
    main,
    h(
      "div",
      { class: "page-head" },
      h("h1", { tabindex: "-1" }, "Failures"),
      h("span", { class: "sub" }, "Integrations whose messages could not be delivered, most recent first."),
      h("div", { class: "actions" }, refresh),
    ),
    h("div", { class: "layout" }, h("div", { class: "stack" }, tableCard, others), side),
  );
  const recovery = mountRecoveryPanel(side);
  const activity = mountActivityPanel(side);
  let disposed = false;

  async function load() {
    replace(tableCard, h("h2", { id: "overview-title" }, "Integrations with failures"), h("p", { class: "muted" }, "Loading…"));
    let overview;
    let configs = [];
    try {
      [overview, configs] = await Promise.all([
        api.overview(),
        api.integrations().then((data) => data.items, () => []), // the list is a nicety: never block on it
      ]);
    } catch (error) {
      if (!disposed) replace(tableCard, h("h2", { id: "overview-title" }, "Integrations with failures"), errorBlock(error.message));
      return;
    }
    if (disposed) return;
    const items = [...overview.items].sort((a, b) => (b.last_failed_at ?? "").localeCompare(a.last_failed_at ?? ""));
    replace(tableCard, h("h2", { id: "overview-title" }, "Integrations with failures"), overviewTable(items));
    renderOthers(configs, new Set(items.map((item) => item.integration)));
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

  load();
  return {
    destroy() {
      disposed = true;
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
