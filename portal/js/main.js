// The app: takes the key from the URL or asks for it, then shows the view the URL names and
// follows hash changes. One view is mounted at a time; it is destroyed (timers stopped)
// before the next one mounts.

import { api, setUnauthorizedHandler } from "./api.js";
import { h, replace } from "./dom.js";
import { forgetKey, getKey, setKey, takeKeyFromUrl } from "./key.js";
import { clearNotices } from "./notices.js";
import { isRoute, overviewHref, parseRoute } from "./route.js";
import { mountAlerts } from "./views/alerts.js";
import { mountIntegration } from "./views/integration.js";
import { mountOverview } from "./views/overview.js";
import { mountSettings } from "./views/settings.js";

const main = document.getElementById("main");
const keyStatus = document.getElementById("key-status");
const navFailures = document.getElementById("nav-failures");
const navAlerts = document.getElementById("nav-alerts");

let view = null;
let asking = false;

function unmount() {
  view?.destroy();
  view = null;
}

function show(initial = false) {
  if (!isRoute(window.location.hash)) return; // an in-page anchor such as the skip link
  if (!getKey()) {
    askForKey();
    return;
  }
  const route = parseRoute(window.location.hash);
  if (view?.update?.(route)) return; // same page, new filters: updated in place
  unmount();
  clearNotices();
  navFailures.setAttribute("aria-current", route.view === "overview" ? "page" : "false");
  navAlerts.setAttribute("aria-current", route.view === "alerts" ? "page" : "false");
  if (route.view === "overview") view = mountOverview(main);
  else if (route.view === "alerts") view = mountAlerts(main);
  else if (route.view === "integration") view = mountIntegration(main, route);
  else if (route.view === "settings") view = mountSettings(main, route);
  else view = mountNotFound(route);
  renderKeyStatus();
  // Moving focus to the new heading tells screen reader users the page changed.
  if (!initial) main.querySelector("h1")?.focus();
}

function mountNotFound(route) {
  document.title = "Not found · Rebound";
  replace(main, h("h1", { tabindex: "-1" }, "No such page"), h("p", {}, `Nothing lives at “${route.path}”. `, h("a", { href: overviewHref() }, "Go to the failures overview")));
  return { destroy() {} };
}

function renderKeyStatus() {
  if (!getKey()) {
    replace(keyStatus);
    return;
  }
  replace(
    keyStatus,
    h("span", {}, "Function key set"),
    h(
      "button",
      {
        type: "button",
        class: "small",
        onclick: () => {
          forgetKey();
          askForKey("The key was forgotten. Enter a function key to continue.");
        },
      },
      "Forget key",
    ),
  );
}

let keyFormError = null; // the key form's message line while the form is up

function askForKey(message = "") {
  // Parallel calls of a view may each answer 401: one form, the latest message.
  if (keyFormError?.isConnected && !view) {
    keyFormError.textContent = message;
    return;
  }
  unmount();
  replace(keyStatus);
  document.title = "Function key · Rebound";
  const input = h("input", { id: "function-key", type: "password", autocomplete: "off", required: true, spellcheck: "false" });
  const error = h("p", { class: "error", id: "function-key-error", role: "alert" }, message);
  keyFormError = error;
  const submit = h("button", { type: "submit", class: "primary" }, "Open the portal");
  const form = h(
    "form",
    { "aria-labelledby": "key-title", "data-testid": "key-form" },
    h("div", { class: "field" }, h("label", { for: "function-key" }, "Function key"), input, h("span", { class: "hint" }, "Kept for this browser tab only (session storage).")),
    error,
    h("div", {}, submit),
  );
  input.setAttribute("aria-describedby", "function-key-error");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    submit.disabled = true;
    setKey(input.value.trim());
    asking = true;
    try {
      await api.integrations(); // any keyed route: does the key open the API?
    } catch (failure) {
      asking = false;
      submit.disabled = false;
      if (failure.status !== 401) error.textContent = `The server could not be asked: ${failure.message}`;
      return; // a 401 has already put this form back up with its message
    }
    asking = false;
    show();
  });
  replace(
    main,
    h(
      "section",
      { class: "card key-form" },
      h("h1", { id: "key-title", tabindex: "-1" }, "Function key"),
      h("p", {}, "The Failures page talks to the Rebound API, which needs the app's function key (the ", h("code", {}, "x-functions-key"), ")."),
      form,
    ),
  );
  input.focus();
}

setUnauthorizedHandler(() => {
  if (asking) {
    asking = false;
    askForKey("That key was not accepted. Check it and try again.");
  } else {
    askForKey("The function key was not accepted (or has changed). Enter it again.");
  }
});

takeKeyFromUrl();
window.addEventListener("hashchange", () => show());
show(true);
