// The retry policy form of an integration's settings. Inputs carry the spec's bounds (the browser
// checks them first); whatever the server still rejects comes back as a 422 naming each field,
// and the message is shown next to that field.

import { api } from "../api.js";
import { h, replace, uid } from "../dom.js";
import { notify } from "../notices.js";
import { can, ROLES } from "../session.js";

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

/** `onSaved(config)` fires with the configuration the server saved. */
export function createPolicyForm(integration, config, onSaved) {
  let current = config;
  const controls = new Map(); // API field path → {input, error}: where the server's field errors go
  const formErrors = h("div", { class: "form-errors", role: "alert", "data-testid": "form-errors" });
  const status = h("span", { class: "muted", role: "status" });
  const mode = createModeChoice(controls);
  const enabledError = h("span", { class: "error", "data-error-for": "retry.backoff.enabled" });
  const enabled = h("input", { type: "checkbox", id: uid("enabled"), dataset: { field: "retry.backoff.enabled" } });
  controls.set("retry.backoff.enabled", { input: enabled, error: enabledError });
  const save = h("button", { type: "submit", class: "primary" }, "Save retry policy");
  const reset = h("button", { type: "button", onclick: () => fill(current) }, "Undo changes");
  // Both modes' fields stay editable (the server validates the whole policy); the legends say which applies.
  const form = h(
    "form",
    { class: "settings-form", "aria-labelledby": "policy-title", "data-testid": "settings-form" },
    h("h2", { id: "policy-title" }, "Retry policy"),
    mode.element,
    h("fieldset", { "data-testid": "linear-fields" }, h("legend", {}, "Linear ", mode.linearInUse), numberFields(LINEAR_FIELDS, controls)),
    h(
      "fieldset",
      { "data-testid": "backoff-fields" },
      h("legend", {}, "Backoff ", mode.backoffInUse),
      h("div", { class: "field" }, h("label", { class: "check", for: enabled.id }, enabled, "Enabled (off: the default policy, linear 3, applies)"), enabledError),
      numberFields(BACKOFF_FIELDS, controls),
    ),
    formErrors,
    // Changing settings is an admin's: others see the policy, read-only, and why.
    can(ROLES.admin)
      ? h("div", { class: "toolbar" }, save, reset, status)
      : h("p", { class: "muted", "data-testid": "read-only-note" }, "Changing the retry policy needs the Admin role."),
  );
  if (!can(ROLES.admin)) {
    for (const fieldset of form.querySelectorAll("fieldset")) fieldset.disabled = true;
  }

  function fill(source) {
    clearErrors(controls, formErrors);
    const retry = source.retry ?? {};
    mode.set(retry.mode);
    enabled.checked = retry.backoff?.enabled ?? true;
    for (const [path, { input }] of controls) {
      if (input.type === "number") input.value = String(valueAt(source, path) ?? "");
    }
  }

  function read() {
    const number = (path) => {
      const raw = controls.get(path).input.value.trim();
      return raw === "" ? null : Number(raw); // an empty field is the server's to name, not ours to guess
    };
    const backoff = Object.fromEntries(BACKOFF_FIELDS.map(([path]) => [path.split(".").pop(), number(path)]));
    return { mode: mode.value, linear_count: number("retry.linear_count"), backoff: { enabled: enabled.checked, ...backoff } };
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(controls, formErrors);
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
      if (error.status === 422 && Array.isArray(error.details.fields)) showErrors(controls, formErrors, error.details.fields);
      else replace(formErrors, h("div", { class: "alert" }, `Not saved: ${error.message}`));
    } finally {
      save.disabled = false;
    }
  });

  fill(config);
  return { element: form };
}

/** The engine retry mode radios, and the "(in use)" marks for the two modes' legends. */
function createModeChoice(controls) {
  const name = uid("mode");
  const error = h("span", { class: "error", id: `${name}-error`, "data-error-for": "retry.mode" });
  const linear = h("input", { type: "radio", name, value: "linear", id: `${name}-linear`, dataset: { field: "retry.mode" } });
  const backoff = h("input", { type: "radio", name, value: "backoff", id: `${name}-backoff` });
  controls.set("retry.mode", { input: linear, error });
  const linearInUse = h("span", { class: "in-use" });
  const backoffInUse = h("span", { class: "in-use" });
  const showMode = () => {
    linearInUse.textContent = linear.checked ? "(in use)" : "(not in use)";
    backoffInUse.textContent = backoff.checked ? "(in use)" : "(not in use)";
  };
  linear.addEventListener("change", showMode);
  backoff.addEventListener("change", showMode);
  const element = h(
    "fieldset",
    {},
    h("legend", {}, "Engine retry mode"),
    h(
      "div",
      { class: "radios" },
      h("label", { class: "check", for: linear.id }, linear, "Linear: re-run at once, a fixed number of times"),
      h("label", { class: "check", for: backoff.id }, backoff, "Backoff: requeue with a random delay, watch the error rate"),
    ),
    error,
  );
  return {
    element,
    linearInUse,
    backoffInUse,
    get value() {
      return backoff.checked ? "backoff" : "linear";
    },
    set(value) {
      linear.checked = value !== "backoff";
      backoff.checked = value === "backoff";
      showMode();
    },
  };
}

/** A grid of number inputs, each registered in `controls` under its API field path. */
function numberFields(specs, controls) {
  return h("div", { class: "grid" }, specs.map((spec) => numberField(spec, controls)));
}

function numberField([path, label, min, max, hint], controls) {
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

function clearErrors(controls, formErrors) {
  for (const { input, error } of controls.values()) {
    input.removeAttribute("aria-invalid");
    error.textContent = "";
  }
  formErrors.replaceChildren();
}

/** Each field error next to its field; those naming no field of the form, listed above the buttons. */
function showErrors(controls, formErrors, fields) {
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
  const list = unplaced.length ? h("ul", {}, unplaced.map((text) => h("li", {}, text))) : h("span", {}, " See the marked fields.");
  replace(formErrors, h("div", { class: "alert" }, h("div", {}, h("strong", {}, "The server did not accept these settings."), list)));
  first?.focus();
}

function valueAt(source, path) {
  return path.split(".").reduce((node, key) => (node === null || node === undefined ? undefined : node[key]), source);
}
