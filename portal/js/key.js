// The function key: asked for once, then kept in sessionStorage for this browser tab's session.
// A `?code=` in the page URL (what `make run` prints) is taken as the key and removed from the
// address bar, so it does not linger in history, bookmarks or a shared link.

const STORAGE_NAME = "rebound.functionKey";

export function takeKeyFromUrl() {
  const url = new URL(window.location.href);
  const code = url.searchParams.get("code");
  if (code === null) return;
  if (code) setKey(code);
  url.searchParams.delete("code");
  window.history.replaceState(window.history.state, "", url.pathname + url.search + url.hash);
}

export function getKey() {
  try {
    return window.sessionStorage.getItem(STORAGE_NAME) || "";
  } catch {
    return memoryKey; // storage disabled (privacy mode): keep it for this page's lifetime only
  }
}

let memoryKey = "";

export function setKey(key) {
  memoryKey = key;
  try {
    window.sessionStorage.setItem(STORAGE_NAME, key);
  } catch {
    // sessionStorage unavailable; memoryKey serves until the tab reloads
  }
}

export function forgetKey() {
  memoryKey = "";
  try {
    window.sessionStorage.removeItem(STORAGE_NAME);
  } catch {
    // nothing stored
  }
}
