// The app: learns how people sign in here, makes sure someone is (a sign-in through App Service
// Authentication or devhost, or in key mode the function key from the URL or a form), then shows
// the view the URL names and follows hash changes. One view is mounted at a time; it is destroyed
// (timers stopped) before the next one mounts.

import { api, setUnauthorizedHandler } from "./api.js";
import { h, replace } from "./dom.js";
import { setUtc, showsUtc, zoneName } from "./format.js";
import { forgetKey, getKey, setKey, takeKeyFromUrl } from "./key.js";
import { clearNotices } from "./notices.js";
import { startOutageBanner } from "./outage.js";
import { setOutageCheck } from "./refresh.js";
import { isRoute, overviewHref, parseRoute } from "./route.js";
import { roleLabel, setConfig, setUser, signInHref, signOutHref, signsIn, user } from "./session.js";
import { mountAlerts } from "./views/alerts.js";
import { mountAudit } from "./views/audit.js";
import { mountIntegration } from "./views/integration.js";
import { mountOverview } from "./views/overview.js";
import { mountSettings } from "./views/settings.js";

const main = document.getElementById("main");
const account = document.getElementById("account");
const navLinks = {
  overview: document.getElementById("nav-failures"),
  alerts: document.getElementById("nav-alerts"),
  audit: document.getElementById("nav-audit"),
};

let view = null;
let asking = false;

// Storage or the server not answering: a banner, retries with backoff, then the view reloads in place
// (a view without `refresh` is mounted again).
const outage = startOutageBanner(document.getElementById("outage"), {
  onRecovered: () => {
    if (!view || !user()) return;
    if (view.refresh) view.refresh();
    else show(false, true);
  },
});
setOutageCheck(outage.down);

// Times in the browser's zone (named on every time) or in UTC; the switch's title names the local zone.
const zoneSwitch = document.getElementById("zone-switch");
zoneSwitch.checked = showsUtc();
zoneSwitch.closest("label").title = `Show every time in UTC instead of your time zone (${zoneName({ local: true })})`;
zoneSwitch.addEventListener("change", () => setUtc(zoneSwitch.checked));

function unmount() {
  view?.destroy();
  view = null;
}

function show(initial = false, remount = false) {
  if (!isRoute(window.location.hash)) return; // an in-page anchor such as the skip link
  if (!user()) {
    if (signsIn()) showSignIn();
    else askForKey();
    return;
  }
  const route = parseRoute(window.location.hash);
  if (!remount && view?.update?.(route)) return; // same page, new filters: updated in place
  unmount();
  clearNotices();
  for (const [name, link] of Object.entries(navLinks)) link.setAttribute("aria-current", route.view === name ? "page" : "false");
  if (route.view === "overview") view = mountOverview(main);
  else if (route.view === "alerts") view = mountAlerts(main);
  else if (route.view === "integration") view = mountIntegration(main, route);
  else if (route.view === "settings") view = mountSettings(main, route);
  else if (route.view === "audit") view = mountAudit(main, route);
  else view = mountNotFound(route);
  renderAccount();
  // Moving focus to the new heading tells screen reader users the page changed.
  if (!initial) main.querySelector("h1")?.focus();
}

function mountNotFound(route) {
  document.title = "Not found · Rebound";
  replace(main, h("h1", { tabindex: "-1" }, "No such page"), h("p", {}, `Nothing lives at “${route.path}”. `, h("a", { href: overviewHref() }, "Go to the failures overview")));
  return { destroy() {} };
}

/** Who is signed in (with a sign-out link), or in key mode that a key is set (with "Forget key"). */
function renderAccount() {
  const caller = user();
  if (!caller) {
    replace(account);
    return;
  }
  if (signsIn()) {
    replace(
      account,
      h("span", {}, "Signed in as ", h("span", { class: "who", "data-testid": "signed-in-as" }, caller.name), " · ", h("span", { "data-testid": "signed-in-role" }, roleLabel())),
      signOutHref() ? h("a", { class: "button small", href: signOutHref() }, "Sign out") : null,
    );
    return;
  }
  replace(
    account,
    h("span", {}, "Function key set"),
    h(
      "button",
      {
        type: "button",
        class: "small",
        onclick: () => {
          forgetKey();
          setUser(null);
          askForKey("The key was forgotten. Enter a function key to continue.");
        },
      },
      "Forget key",
    ),
  );
}

/** Not signed in (or the sign-in lapsed): say so, and link to the provider's sign-in. */
function showSignIn(message = "") {
  unmount();
  setUser(null);
  replace(account);
  document.title = "Sign in · Rebound";
  const link = signInHref();
  replace(
    main,
    h(
      "section",
      { class: "card key-form", "data-testid": "sign-in" },
      h("h1", { tabindex: "-1" }, "Sign in"),
      message ? h("p", { class: "error", role: "alert" }, message) : null,
      h("p", {}, "The Failures page shows what your role lets you see and do. Sign in to continue."),
      link ? h("p", {}, h("a", { class: "button primary", href: link }, "Sign in")) : h("p", { class: "error" }, "This server names no sign-in page."),
    ),
  );
  main.querySelector("h1")?.focus();
}

let keyFormError = null; // the key form's message line while the form is up

function askForKey(message = "") {
  // Parallel calls of a view may each answer 401: one form, the latest message.
  if (keyFormError?.isConnected && !view) {
    keyFormError.textContent = message;
    return;
  }
  unmount();
  replace(account);
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
    let caller;
    try {
      caller = await api.me(); // does the key open the API?
    } catch (failure) {
      asking = false;
      submit.disabled = false;
      if (failure.status === 401) {
        forgetKey();
        error.textContent = "That key was not accepted. Check it and try again.";
      } else {
        error.textContent = `The server could not be asked: ${failure.message}`;
      }
      return;
    }
    asking = false;
    setUser(caller);
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
  if (signsIn()) {
    showSignIn("Your sign-in has expired (or you signed out elsewhere). Sign in again to continue.");
  } else if (!asking) {
    setUser(null);
    askForKey("The function key was not accepted (or has changed). Enter it again.");
  }
});

/** How people sign in here, then who is signed in; then the page the URL names. */
async function start() {
  try {
    setConfig(await api.config());
  } catch (error) {
    // A server without the config route is one from before sign-in: it takes the function key.
    if (error.status !== 404) {
      replace(main, h("h1", { tabindex: "-1" }, "Rebound"), h("p", { class: "alert", role: "alert" }, `The server could not be asked how to sign in: ${error.message}`));
      return;
    }
    setConfig({ auth_mode: "key", sign_in: null, sign_out: null });
  }
  if (!signsIn()) takeKeyFromUrl();
  let rejected = "";
  if (signsIn() || getKey()) {
    try {
      setUser(await api.me());
    } catch (error) {
      if (error.status !== 401) {
        replace(main, h("h1", { tabindex: "-1" }, "Rebound"), h("p", { class: "alert", role: "alert" }, `The server could not be asked who you are: ${error.message}`));
        return;
      }
      if (!signsIn()) {
        forgetKey();
        rejected = "The function key was not accepted (or has changed). Enter it again.";
      }
    }
  }
  window.addEventListener("hashchange", () => show());
  if (rejected) askForKey(rejected);
  else show(true);
}

start();
