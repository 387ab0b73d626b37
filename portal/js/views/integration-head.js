// The head of an integration's page: the breadcrumb, the integration's name with sender →
// receiver from its configuration, and the page's own actions (Settings, Refresh).

import { api, userMessage } from "../api.js";
import { h } from "../dom.js";
import { overviewHref, settingsHref } from "../route.js";

export function createIntegrationHead(integration, { onRefresh }) {
  let disposed = false;
  const title = h("h1", { tabindex: "-1" }, integration);
  const subtitle = h("span", { class: "sub" });
  const breadcrumb = h(
    "nav",
    { class: "breadcrumb", "aria-label": "Breadcrumb" },
    h("ol", {}, h("li", {}, h("a", { href: overviewHref() }, "Failures")), h("li", { "aria-current": "page" }, integration)),
  );
  const actions = h(
    "div",
    { class: "actions" },
    h("a", { class: "button", href: settingsHref(integration) }, "Settings"),
    h("button", { type: "button", onclick: () => onRefresh() }, "Refresh"),
  );
  const heading = h("div", { class: "page-head" }, title, subtitle, actions);
  document.title = `${integration} · Failures · Rebound`;

  /** Name the page after the integration's configuration; resolves to the config, null without one,
   * undefined when it could not be read (an outage is not "no configuration"). */
  async function load() {
    try {
      const config = await api.integration(integration);
      if (disposed) return null;
      title.textContent = config.name || integration;
      const parts = [config.name && config.name !== integration ? integration : null];
      if (config.sender || config.receiver) parts.push(`${config.sender || "?"} → ${config.receiver || "?"}`);
      subtitle.textContent = parts.filter(Boolean).join(" · ");
      document.title = `${config.name || integration} · Failures · Rebound`;
      return config;
    } catch (error) {
      if (disposed) return undefined;
      if (error.status === 404) {
        subtitle.textContent = "no configuration"; // e.g. `_unknown`: failures without an integration
        return null;
      }
      subtitle.textContent = `configuration unknown: ${userMessage(error)}`;
      return undefined;
    }
  }

  return {
    /** Placed by the page above its layout: the breadcrumb, then the heading. */
    parts: { breadcrumb, heading, actions },
    load,
    destroy() {
      disposed = true;
    },
  };
}
