// The delivery control form of an integration's settings: the rate limit and the circuit breaker.
// Saved with the rest of the configuration (PUT); field errors from a 422 are shown beside the fields.

import { api } from "../api.js";
import { h, replace, uid } from "../dom.js";
import { notify } from "../notices.js";
import { can, ROLES } from "../session.js";

const BREAKER_FIELDS = [
  ["failure_threshold", "Failure threshold", 1, 100000, "Transient failures in the window that open it (default 20)"],
  ["window_minutes", "Window (minutes)", 1, 1440, "Failures are counted per window (default 5)"],
  ["cooldown_seconds", "Cooldown (seconds)", 1, 86400, "Open this long before one probe message (default 60)"],
];

/** `onSaved(config)` fires with the configuration the server saved. */
export function createControlForm(integration, config, onSaved) {
  let current = config;
  const errors = new Map();
  const formErrors = h("div", { class: "form-errors", role: "alert" });
  const status = h("span", { class: "muted", role: "status" });
  const rateId = uid("rate");
  const rate = h("input", { id: rateId, type: "number", step: "0.1", min: "0.1", max: "1000", "data-testid": "rate-limit", "aria-describedby": `${rateId}-hint ${rateId}-error` });
  errors.set("rate_limit.per_second", h("span", { class: "error", id: `${rateId}-error` }));
  const breakerOn = h("input", { type: "checkbox", id: uid("breaker"), "data-testid": "breaker-enabled" });
  const numbers = new Map();
  const grid = h(
    "div",
    { class: "grid" },
    BREAKER_FIELDS.map(([name, label, min, max, hint]) => {
      const id = uid("breaker-field");
      const input = h("input", { id, type: "number", step: "1", min, max, "aria-describedby": `${id}-hint ${id}-error`, dataset: { field: name } });
      const error = h("span", { class: "error", id: `${id}-error` });
      numbers.set(name, input);
      errors.set(`circuit_breaker.${name}`, error);
      return h("div", { class: "field" }, h("label", { for: id }, label), input, h("span", { class: "hint", id: `${id}-hint` }, hint), error);
    }),
  );
  const save = h("button", { type: "submit", class: "primary" }, "Save delivery control");
  const form = h(
    "form",
    { class: "settings-form", "aria-labelledby": "control-settings-title", "data-testid": "control-form" },
    h("h2", { id: "control-settings-title" }, "Delivery control"),
    h(
      "fieldset",
      {},
      h("legend", {}, "Rate limit"),
      h("div", { class: "field" }, h("label", { for: rateId }, "Deliveries per second, across all instances"), rate, h("span", { class: "hint", id: `${rateId}-hint` }, "Empty: no limit. A multiple of 0.1 up to 1000."), errors.get("rate_limit.per_second")),
    ),
    h(
      "fieldset",
      {},
      h("legend", {}, "Circuit breaker"),
      h("div", { class: "field" }, h("label", { class: "check", for: breakerOn.id }, breakerOn, "Pause by itself when the receiver keeps failing")),
      grid,
    ),
    formErrors,
    // Changing settings is an admin's: others see them, read-only, and why.
    can(ROLES.admin)
      ? h("div", { class: "toolbar" }, save, status)
      : h("p", { class: "muted" }, "Changing delivery control needs the Admin role."),
  );
  if (!can(ROLES.admin)) {
    for (const fieldset of form.querySelectorAll("fieldset")) fieldset.disabled = true;
  }

  function fill(source) {
    rate.value = source.rate_limit ? String(source.rate_limit.per_second) : "";
    const breaker = source.circuit_breaker;
    breakerOn.checked = Boolean(breaker?.enabled);
    const defaults = { failure_threshold: 20, window_minutes: 5, cooldown_seconds: 60 };
    for (const [name, input] of numbers) input.value = String(breaker?.[name] ?? defaults[name]);
  }

  function read() {
    const perSecond = rate.value.trim();
    const breaker = { enabled: breakerOn.checked };
    for (const [name, input] of numbers) breaker[name] = Number(input.value);
    return {
      rate_limit: perSecond === "" ? null : { per_second: Number(perSecond) },
      circuit_breaker: breakerOn.checked || current.circuit_breaker ? breaker : null,
    };
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    for (const error of errors.values()) error.textContent = "";
    formErrors.replaceChildren();
    status.textContent = "Saving…";
    save.disabled = true;
    try {
      const saved = await api.saveIntegration(integration, { ...current, ...read() });
      current = saved;
      fill(saved);
      onSaved(saved);
      status.textContent = "Saved.";
      notify("Delivery control saved.");
    } catch (error) {
      status.textContent = "";
      const fields = error.status === 422 && Array.isArray(error.details.fields) ? error.details.fields : [];
      const unplaced = fields.filter(({ field, message }) => {
        const slot = errors.get(field);
        if (slot) slot.textContent = message;
        return !slot;
      });
      if (!fields.length || unplaced.length) {
        replace(formErrors, h("div", { class: "alert" }, `Not saved: ${unplaced.map((f) => `${f.field}: ${f.message}`).join("; ") || error.message}`));
      }
    } finally {
      save.disabled = false;
    }
  });

  fill(config);
  return { element: form };
}
