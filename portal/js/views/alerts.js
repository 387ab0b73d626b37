// The Alerts page: the rules (with "Send test alert" and Delete), a form to add or replace one, and
// the history of what fired, firing or resolved, and whether each notice went out.

import { api } from "../api.js";
import { confirmAction } from "../dialogs.js";
import { h, replace, scrollRegion, uid } from "../dom.js";
import { formatCount, timeElement } from "../format.js";
import { errorBlock, notify, notifyError } from "../notices.js";
import { can, ROLES } from "../session.js";

const KINDS = [
  ["failure_count", "Failures in the window"],
  ["catastrophic", "Catastrophic failures in the window"],
  ["circuit_open", "Circuit breakers open"],
  ["job_failed", "Jobs that failed in the window"],
  ["recovery_backlog", "Messages waiting in recovery"],
  ["pickup_failing", "Pickup sources whose last run failed"],
];
const WINDOWED = new Set(["failure_count", "catastrophic", "job_failed"]);

export function mountAlerts(main) {
  const rulesCard = h("section", { class: "card", "aria-labelledby": "rules-title" });
  const formCard = h("section", { class: "card", "aria-labelledby": "rule-form-title" });
  const historyCard = h("section", { class: "card", "aria-labelledby": "history-title" });
  replace(
    main,
    h(
      "div",
      { class: "page-head" },
      h("h1", { tabindex: "-1" }, "Alerts"),
      h("span", { class: "sub" }, "Rules that tell people when failures pile up, breakers open, jobs fail, recovery backs up or pickup fails."),
      h("div", { class: "actions" }, h("button", { type: "button", onclick: () => load() }, "Refresh")),
    ),
    h("div", { class: "stack" }, rulesCard, formCard, historyCard),
  );
  document.title = "Alerts · Rebound";
  let disposed = false;
  // Rules are an admin's to change (and to test); others see them and the history.
  const form = createRuleForm({ onSaved: () => load() });
  if (can(ROLES.admin)) replace(formCard, form.element);
  else formCard.hidden = true;

  async function load() {
    try {
      const [rules, alerts] = await Promise.all([api.alertRules(), api.alerts(100)]);
      if (disposed) return;
      replace(rulesCard, h("h2", { id: "rules-title" }, "Rules"), rulesTable(rules.items, { onEdit: (rule) => form.edit(rule), onChanged: () => load() }));
      replace(historyCard, h("h2", { id: "history-title" }, "History"), historyTable(alerts.items));
    } catch (error) {
      if (disposed) return;
      replace(rulesCard, h("h2", { id: "rules-title" }, "Rules"), errorBlock(`The rules are unknown: ${error.message}`));
      replace(historyCard, h("h2", { id: "history-title" }, "History"), h("p", { class: "muted" }, "Unknown until the rules load."));
    }
  }

  load();
  return {
    // After an outage: the lists again, the form as the person left it.
    refresh: load,
    destroy() {
      disposed = true;
    },
  };
}

function rulesTable(views, { onEdit, onChanged }) {
  if (views.length === 0) return h("p", { class: "empty", "data-testid": "rules-empty" }, "No alert rules yet: add one below.");
  return h(
    "div",
    { class: "table-wrap" },
    h(
      "table",
      { "data-testid": "rules-table" },
      h("caption", { class: "visually-hidden" }, "Alert rules"),
      h("thead", {}, h("tr", {}, ["Rule", "Watches", "Integration", "Threshold", "Cooldown", "Channel", "State", "Actions"].map((label) => h("th", { scope: "col" }, label)))),
      h(
        "tbody",
        {},
        views.map(({ rule, state }) =>
          h(
            "tr",
            { dataset: { rule: rule.id } },
            h("th", { scope: "row" }, rule.id, rule.enabled ? null : h("span", { class: "muted" }, " (off)")),
            h("td", {}, kindLabel(rule.kind), WINDOWED.has(rule.kind) ? h("span", { class: "muted" }, ` · ${rule.window_minutes} min`) : null),
            h("td", {}, rule.integration ?? h("span", { class: "muted" }, "all")),
            h("td", { class: "num" }, formatCount(rule.threshold)),
            h("td", {}, `${rule.cooldown_minutes} min`),
            h("td", {}, h("span", { class: "badge" }, rule.channel.kind), " ", channelTarget(rule.channel)),
            h("td", {}, h("span", { class: `badge ${state.firing ? "endpoint" : "ok"}`, "data-testid": "rule-state" }, state.firing ? "firing" : "quiet")),
            h(
              "td",
              {},
              can(ROLES.admin) &&
              h(
                "span",
                { class: "badges" },
                h("button", { type: "button", class: "small", "data-testid": "send-test", onclick: (event) => sendTest(rule, event.currentTarget, onChanged) }, "Send test alert"),
                h("button", { type: "button", class: "small", onclick: () => onEdit(rule) }, "Edit"),
                h("button", { type: "button", class: "small danger", onclick: () => remove(rule, onChanged) }, "Delete"),
              ),
            ),
          ),
        ),
      ),
    ),
  );
}

async function sendTest(rule, button, onChanged) {
  button.disabled = true;
  try {
    const alert = await api.testAlertRule(rule.id);
    if (alert.fired_notice === "sent") notify(`Test alert sent through ${rule.channel.kind}.`);
    else notifyError(`The test alert did not go out: ${alert.last_error ?? "unknown error"}`);
    onChanged();
  } catch (error) {
    notifyError(`Could not send a test alert: ${error.message}`);
  } finally {
    button.disabled = false;
  }
}

async function remove(rule, onChanged) {
  const confirmed = await confirmAction({ title: `Delete rule ${rule.id}?`, message: "It stops alerting; what it fired stays in the history.", confirmLabel: "Delete rule", danger: true });
  if (!confirmed) return;
  try {
    await api.deleteAlertRule(rule.id);
    notify(`Rule ${rule.id} deleted.`);
    onChanged();
  } catch (error) {
    notifyError(`Could not delete the rule: ${error.message}`);
  }
}

function historyTable(alerts) {
  if (alerts.length === 0) return h("p", { class: "empty", "data-testid": "history-empty" }, "Nothing has fired.");
  return scrollRegion(
    "Alert history",
    h(
      "table",
      { "data-testid": "history-table" },
      h("caption", { class: "visually-hidden" }, "Alerts, newest first"),
      h("thead", {}, h("tr", {}, ["Fired", "Rule", "Integration", "Count", "State", "Notices"].map((label) => h("th", { scope: "col" }, label)))),
      h(
        "tbody",
        {},
        alerts.map((alert) =>
          h(
            "tr",
            { dataset: { alert: alert.id } },
            h("td", { class: "time" }, timeElement(alert.fired_at)),
            h("th", { scope: "row" }, alert.rule_id, alert.test ? h("span", { class: "muted" }, " (test)") : null),
            h("td", {}, alert.integration ?? h("span", { class: "muted" }, "all")),
            h("td", { class: "num" }, formatCount(alert.count)),
            h("td", {}, h("span", { class: `badge ${alert.state === "firing" ? "endpoint" : "ok"}` }, alert.state), alert.resolved_at ? [" ", timeElement(alert.resolved_at)] : null),
            h(
              "td",
              {},
              `${alert.test ? "test" : "fired"}: ${alert.fired_notice}`,
              alert.resolved_notice ? ` · resolved: ${alert.resolved_notice}` : null,
              alert.last_error ? h("div", { class: "error" }, alert.last_error) : null,
            ),
          ),
        ),
      ),
    ),
  );
}

/** Add or replace a rule; `edit(rule)` fills it from a rule of the table. */
function createRuleForm({ onSaved }) {
  const fields = {};
  const errors = new Map();
  const field = (name, label, input, hint = "") => {
    const id = uid("rule");
    input.id = id;
    const error = h("span", { class: "error", id: `${id}-error` });
    errors.set(name, error);
    input.setAttribute("aria-describedby", `${id}-error`);
    fields[name] = input;
    return h("div", { class: "field" }, h("label", { for: id }, label), input, hint ? h("span", { class: "hint" }, hint) : null, error);
  };
  const select = (options) => h("select", {}, options.map(([value, label]) => h("option", { value }, label)));
  const formErrors = h("div", { class: "form-errors", role: "alert" });
  const status = h("span", { class: "muted", role: "status" });
  const element = h(
    "form",
    { class: "settings-form", "aria-labelledby": "rule-form-title", "data-testid": "rule-form" },
    h("h2", { id: "rule-form-title" }, "Add or replace a rule"),
    h(
      "div",
      { class: "grid" },
      field("id", "Rule id", h("input", { type: "text", required: true, "data-testid": "rule-id" }), "Letters, digits, '.', '_' or '-'; the same id replaces a rule"),
      field("kind", "Watches", select(KINDS)),
      field("integration", "Integration", h("input", { type: "text", "data-testid": "rule-integration" }), "Empty: all integrations"),
      field("threshold", "Threshold", h("input", { type: "number", min: "1", value: "1", required: true })),
      field("window_minutes", "Window (minutes)", h("input", { type: "number", min: "1", max: "1440", value: "5", required: true })),
      field("cooldown_minutes", "Cooldown (minutes)", h("input", { type: "number", min: "1", max: "10080", value: "60", required: true }), "At most one alert per rule in this time"),
      field("channel.kind", "Channel", select([["webhook", "Webhook (JSON, signed)"], ["teams", "Teams (Workflows webhook)"], ["email", "Email"]])),
      field("channel.url", "Webhook URL", h("input", { type: "url", "data-testid": "rule-url" }), "Webhook and Teams"),
      field("channel.secret_setting", "Secret setting", h("input", { type: "text" }), "Webhook: an app setting in ENDPOINT_SECRET_SETTINGS signs the body"),
      field("channel.to", "Email to", h("input", { type: "text" }), "Email: addresses separated by commas"),
    ),
    formErrors,
    h("div", { class: "toolbar" }, h("button", { type: "submit", class: "primary" }, "Save rule"), status),
  );

  element.addEventListener("submit", async (event) => {
    event.preventDefault();
    for (const error of errors.values()) error.textContent = "";
    formErrors.replaceChildren();
    const id = fields.id.value.trim();
    const kind = fields["channel.kind"].value;
    const channel = kind === "email"
      ? { kind, to: fields["channel.to"].value.split(",").map((s) => s.trim()).filter(Boolean) }
      : { kind, url: fields["channel.url"].value.trim(), ...(kind === "webhook" && fields["channel.secret_setting"].value.trim() ? { secret_setting: fields["channel.secret_setting"].value.trim() } : {}) };
    const rule = {
      kind: fields.kind.value,
      integration: fields.integration.value.trim() || null,
      threshold: Number(fields.threshold.value),
      window_minutes: Number(fields.window_minutes.value),
      cooldown_minutes: Number(fields.cooldown_minutes.value),
      channel,
    };
    status.textContent = "Saving…";
    try {
      await api.saveAlertRule(id, rule);
      status.textContent = "Saved.";
      notify(`Rule ${id} saved.`);
      onSaved();
    } catch (error) {
      status.textContent = "";
      const problems = error.status === 422 && Array.isArray(error.details.fields) ? error.details.fields : [];
      const unplaced = problems.filter(({ field: name, message }) => {
        const slot = errors.get(name.replace(/\[\d+\]$/, ""));
        if (slot) slot.textContent = message;
        return !slot;
      });
      if (!problems.length || unplaced.length) {
        replace(formErrors, errorBlock(`Not saved: ${unplaced.map((p) => `${p.field}: ${p.message}`).join("; ") || error.message}`));
      }
    }
  });

  return {
    element,
    edit(rule) {
      fields.id.value = rule.id;
      fields.kind.value = rule.kind;
      fields.integration.value = rule.integration ?? "";
      fields.threshold.value = String(rule.threshold);
      fields.window_minutes.value = String(rule.window_minutes);
      fields.cooldown_minutes.value = String(rule.cooldown_minutes);
      fields["channel.kind"].value = rule.channel.kind;
      fields["channel.url"].value = rule.channel.url ?? "";
      fields["channel.secret_setting"].value = rule.channel.secret_setting ?? "";
      fields["channel.to"].value = (rule.channel.to ?? []).join(", ");
      fields.id.focus();
    },
  };
}

function kindLabel(kind) {
  return (KINDS.find(([value]) => value === kind) ?? [kind, kind])[1];
}

function channelTarget(channel) {
  if (channel.kind === "email") return channel.to.join(", ");
  return h("code", {}, channel.url);
}
