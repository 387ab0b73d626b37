// Integration settings: the config at a glance, and the retry policy as a form. Inputs carry
// the spec's bounds (the browser checks them first); whatever the server still rejects comes
// back as a 422 naming each field, and the message is shown next to that field.

import { api } from "../api.js";
import { h, replace, uid } from "../dom.js";
import { notify } from "../notices.js";
import { integrationHref, overviewHref } from "../route.js";

const SEVEN_DAYS_S = 7 * 24 * 3600; // Azure queues hide a message for at most 7 days

/** The retry policy's number fields: [API field path, label, min, max, hint]. Bounds from the spec. */
const LINEAR_FIELDS = [["retry.linear_count", "Engine runs", 3, 10, "3–10 runs in total; attempts = runs × endpoint attempts"]];
const BACKOFF_FIELDS = [
  ["retry.backoff.max_number_of_retries", "Max number of retries", 0, 100, "Retries after the first run (default 5)"],
  ["retry.backoff.failure_count_interval_minutes", "Failure count interval (minutes)", 1, 1440, "Window for counting failures (default 3)"],
  ["retry.backoff.max_errors_per_interval", "Max errors per interval", 1, null, "Above this, messages are held back (default 1000)"],
  ["retry.backoff.requeue_min_delay_seconds", "Requeue min delay (seconds)", 0, SEVEN_DAYS_S, "Default 10"],
  ["retry.backoff.requeue_max_delay_seconds", "Requeue max delay (seconds)", 0, SEVEN_DAYS_S, "Not below the min delay (default 60)"],
  ["retry.backoff.max_delay_actions", "Max delay actions", 0, 100, "Hold-backs before the failure is kept (default 5)"],
];

export function mountSettings(main, route) {
  const integration = route.integration;
  const overview = h("section", { class: "card", "aria-labelledby": "config-title" }, h("p", { class: "muted" }, "Loading…"));
  const policy = h("section", { class: "card", "aria-labelledby": "policy-title" });
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
    h("div", { class: "stack" }, overview, policy),
  );
  document.title = `Settings · ${integration} · Rebound`;
  let disposed = false;

  async function load() {
    let config;
    try {
      config = await api.integration(integration);
    } catch (error) {
      if (disposed) return;
      const message = error.status === 404 ? `There is no configuration for “${integration}”.` : error.message;
      replace(overview, h("p", { class: "alert", role: "alert" }, message));
      replace(policy);
      return;
    }
    if (disposed) return;
    title.textContent = `Settings · ${config.name || integration}`;
    renderOverview(overview, config);
    replace(policy, createPolicyForm(integration, config, (saved) => renderOverview(overview, saved)).element);
  }

  load();
  return {
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
    h("p", { class: "muted" }, "Only the retry policy is edited here; the rest of the configuration through PUT /api/integrations/{id}."),
  );
}

function createPolicyForm(integration, config, onSaved) {
  let current = config;
  const controls = new Map(); // API field path → {input, error}
  const formErrors = h("div", { class: "form-errors", role: "alert", "data-testid": "form-errors" });
  const status = h("span", { class: "muted", role: "status" });

  function numberField([path, label, min, max, hint]) {
    const id = uid("setting");
    const errorId = `${id}-error`;
    const hintId = `${id}-hint`;
    const input = h("input", {
      id,
      type: "number",
      inputmode: "numeric",
      step: "1",
      min,
      max: max ?? null,
      required: true,
      "aria-describedby": `${hintId} ${errorId}`,
      dataset: { field: path },
    });
    const error = h("span", { class: "error", id: errorId, "data-error-for": path });
    controls.set(path, { input, error });
    return h("div", { class: "field" }, h("label", { for: id }, label), input, h("span", { class: "hint", id: hintId }, hint), error);
  }

  const modeName = uid("mode");
  const modeError = h("span", { class: "error", id: `${modeName}-error`, "data-error-for": "retry.mode" });
  const linear = h("input", { type: "radio", name: modeName, value: "linear", id: `${modeName}-linear`, dataset: { field: "retry.mode" } });
  const backoff = h("input", { type: "radio", name: modeName, value: "backoff", id: `${modeName}-backoff` });
  controls.set("retry.mode", { input: linear, error: modeError });
  const enabledError = h("span", { class: "error", "data-error-for": "retry.backoff.enabled" });
  const enabled = h("input", { type: "checkbox", id: uid("enabled"), dataset: { field: "retry.backoff.enabled" } });
  controls.set("retry.backoff.enabled", { input: enabled, error: enabledError });

  // Both modes' fields stay editable (the server validates the whole policy); the legends say which applies.
  const linearInUse = h("span", { class: "in-use" });
  const backoffInUse = h("span", { class: "in-use" });
  const showMode = () => {
    linearInUse.textContent = linear.checked ? "(in use)" : "(not in use)";
    backoffInUse.textContent = backoff.checked ? "(in use)" : "(not in use)";
  };
  linear.addEventListener("change", showMode);
  backoff.addEventListener("change", showMode);
  const save = h("button", { type: "submit", class: "primary" }, "Save retry policy");
  const reset = h("button", { type: "button", onclick: () => fill(current) }, "Undo changes");
  const form = h(
    "form",
    { class: "settings-form", "aria-labelledby": "policy-title", "data-testid": "settings-form" },
    h("h2", { id: "policy-title" }, "Retry policy"),
    h(
      "fieldset",
      {},
      h("legend", {}, "Engine retry mode"),
      h(
        "div",
        { class: "radios" },
        h("label", { class: "check", for: linear.id }, linear, "Linear: re-run at once, a fixed number of times"),
        h("label", { class: "check", for: backoff.id }, backoff, "Backoff: requeue with a random delay, watch the error rate"),
      ),
      modeError,
    ),
    h("fieldset", { "data-testid": "linear-fields" }, h("legend", {}, "Linear ", linearInUse), h("div", { class: "grid" }, LINEAR_FIELDS.map(numberField))),
    h(
      "fieldset",
      { "data-testid": "backoff-fields" },
      h("legend", {}, "Backoff ", backoffInUse),
      h("div", { class: "field" }, h("label", { class: "check", for: enabled.id }, enabled, "Enabled (off: the default policy, linear 3, applies)"), enabledError),
      h("div", { class: "grid" }, BACKOFF_FIELDS.map(numberField)),
    ),
    formErrors,
    h("div", { class: "toolbar" }, save, reset, status),
  );

  function fill(source) {
    clearErrors();
    const retry = source.retry ?? {};
    linear.checked = retry.mode !== "backoff";
    backoff.checked = retry.mode === "backoff";
    enabled.checked = retry.backoff?.enabled ?? true;
    showMode();
    for (const [path, { input }] of controls) {
      if (input.type !== "number") continue;
      input.value = String(valueAt(source, path) ?? "");
    }
  }

  function read() {
    const number = (path) => {
      const raw = controls.get(path).input.value.trim();
      return raw === "" ? null : Number(raw); // an empty field is the server's to name, not ours to guess
    };
    return {
      mode: backoff.checked ? "backoff" : "linear",
      linear_count: number("retry.linear_count"),
      backoff: {
        enabled: enabled.checked,
        ...Object.fromEntries(BACKOFF_FIELDS.map(([path]) => [path.split(".").pop(), number(path)])),
      },
    };
  }

  function clearErrors() {
    for (const { input, error } of controls.values()) {
      input.removeAttribute("aria-invalid");
      error.textContent = "";
    }
    formErrors.replaceChildren();
  }

  function showErrors(fields) {
    const unplaced = [];
    let first = null;
    for (const { field, message } of fields) {
      const control = controls.get(field);
      if (!control) {
        unplaced.push(`${field}: ${message}`);
        continue;
      }
      control.input.setAttribute("aria-invalid", "true");
      control.error.textContent = message;
      first ??= control.input;
    }
    replace(
      formErrors,
      h(
        "div",
        { class: "alert" },
        h(
          "div",
          {},
          h("strong", {}, "The server did not accept these settings."),
          unplaced.length ? h("ul", {}, unplaced.map((text) => h("li", {}, text))) : h("span", {}, " See the marked fields."),
        ),
      ),
    );
    first?.focus();
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors();
    status.textContent = "Saving…";
    save.disabled = true;
    try {
      const saved = await api.saveIntegration(integration, { ...current, retry: read() });
      current = saved;
      fill(saved);
      onSaved(saved);
      status.textContent = "Saved.";
      notify("Retry policy saved.");
    } catch (error) {
      status.textContent = "";
      if (error.status === 422 && Array.isArray(error.details.fields)) showErrors(error.details.fields);
      else replace(formErrors, h("div", { class: "alert" }, `Not saved: ${error.message}`));
    } finally {
      save.disabled = false;
    }
  });

  fill(config);
  return { element: form };
}

function valueAt(source, path) {
  return path.split(".").reduce((node, key) => (node === null || node === undefined ? undefined : node[key]), source);
}
