// Integration settings: the config at a glance, and the retry policy as a form (policy-form.js).

import { api } from "../api.js";
import { h, replace } from "../dom.js";
import { integrationHref, overviewHref } from "../route.js";
import { createControlForm } from "./control-form.js";
import { createPolicyForm } from "./policy-form.js";

export function mountSettings(main, route) {
  const integration = route.integration;
  const overview = h("section", { class: "card", "aria-labelledby": "config-title" }, h("p", { class: "muted" }, "Loading…"));
  const policy = h("section", { class: "card", "aria-labelledby": "policy-title" });
  const control = h("section", { class: "card", "aria-labelledby": "control-settings-title" });
  const title = h("h1", { tabindex: "-1" }, `Settings · ${integration}`);
  replace(
    main,
    h(
      "nav",
      { class: "breadcrumb", "aria-label": "Breadcrumb" },
      h(
        "ol",
        {},
        h("li", {}, h("a", { href: overviewHref() }, "Failures")),
        h("li", {}, h("a", { href: integrationHref(integration) }, integration)),
        h("li", { "aria-current": "page" }, "Settings"),
      ),
    ),
    h("div", { class: "page-head" }, title),
    h("div", { class: "stack" }, overview, policy, control),
  );
  document.title = `Settings · ${integration} · Rebound`;
  let disposed = false;
  let loaded = false;

  async function load() {
    let config;
    try {
      config = await api.integration(integration);
    } catch (error) {
      if (disposed) return;
      const message = error.status === 404 ? `There is no configuration for “${integration}”.` : `The configuration is unknown: ${error.message}`;
      replace(overview, h("p", { class: "alert", role: "alert" }, message));
      policy.hidden = true;
      control.hidden = true;
      return;
    }
    if (disposed) return;
    loaded = true;
    policy.hidden = false;
    control.hidden = false;
    title.textContent = `Settings · ${config.name || integration}`;
    renderOverview(overview, config);
    renderForms(config);
  }

  /** Both forms send the whole config: after one saves, the other starts again from what the server saved. */
  function renderForms(config, { keep = null } = {}) {
    if (keep !== "policy") {
      const onPolicySaved = (next) => {
        renderOverview(overview, next);
        renderForms(next, { keep: "policy" });
      };
      replace(policy, createPolicyForm(integration, config, onPolicySaved).element);
    }
    if (keep !== "control") {
      const onControlSaved = (next) => {
        renderOverview(overview, next);
        renderForms(next, { keep: "control" });
      };
      replace(control, createControlForm(integration, config, onControlSaved).element);
    }
  }

  load();
  return {
    // After an outage: load what could not be loaded; forms already shown keep what the person typed.
    refresh: () => (loaded ? undefined : load()),
    destroy() {
      disposed = true;
    },
  };
}

function renderOverview(container, config) {
  const endpoint = config.endpoint ?? {};
  const target = endpoint.url ?? endpoint.queue ?? endpoint.entity ?? "";
  replace(
    container,
    h("h2", { id: "config-title" }, "Integration"),
    h(
      "dl",
      { class: "facts" },
      [
        ["Id", h("code", {}, config.id)],
        ["Name", config.name],
        ["Sender", config.sender || "—"],
        ["Receiver", config.receiver || "—"],
        ["Endpoint", [h("span", { class: "badge" }, endpoint.kind), " ", h("code", {}, target)]],
        ["Fallback endpoint", config.fallback_endpoint ? h("code", {}, config.fallback_endpoint.url ?? config.fallback_endpoint.queue ?? config.fallback_endpoint.entity) : "none"],
        ["Error rules", config.error_rules?.length ? config.error_rules.map((r) => `${r.status_min}–${r.status_max} → ${r.action}`).join("; ") : "none"],
        ["Keeps failures", config.persist_failures ? "yes" : "no (only logged)"],
      ].map(([label, value]) => [h("dt", {}, label), h("dd", {}, value)]),
    ),
    h("p", { class: "muted" }, "The retry policy and delivery control are edited here; the rest of the configuration through PUT /api/integrations/{id}."),
  );
}
