// Who is using the page, and what they may do. The server says how people sign in here
// (GET portal/config: entra, dev or key) and who is signed in (GET me). The roles nest:
// Reader < Operator < Admin; a view asks `can(ROLES.operator)` before it offers an action.
// The server checks every call itself: hiding a button is for the user, not for security.

export const ROLES = { reader: "Rebound.Reader", operator: "Rebound.Operator", admin: "Rebound.Admin" };
const RANKS = { [ROLES.reader]: 1, [ROLES.operator]: 2, [ROLES.admin]: 3 };
const LABELS = { [ROLES.reader]: "Reader", [ROLES.operator]: "Operator", [ROLES.admin]: "Admin" };

const state = { config: null, user: null };

/** The server's sign-in setup: {auth_mode, sign_in, sign_out}. */
export function setConfig(config) {
  state.config = config;
}

export function authMode() {
  return state.config?.auth_mode ?? "key";
}

/** Signed in through App Service Authentication (entra) or devhost (dev), rather than by a function key. */
export function signsIn() {
  return authMode() !== "key";
}

/** The caller as GET me answered ({name, id, auth, roles}), or null. */
export function setUser(user) {
  state.user = user;
}

export function user() {
  return state.user;
}

function highestRank() {
  return Math.max(0, ...(state.user?.roles ?? []).map((role) => RANKS[role] ?? 0));
}

/** Whether the signed-in caller holds `role` or a role above it. */
export function can(role) {
  return highestRank() >= (RANKS[role] ?? Infinity);
}

/** "Operator", the highest role held, or "no role". */
export function roleLabel() {
  const rank = highestRank();
  const role = Object.keys(RANKS).find((name) => RANKS[name] === rank);
  return role ? LABELS[role] : "no role";
}

export function roleName(role) {
  return LABELS[role] ?? role;
}

/** Where a click on "Sign in" goes: the provider's login, then back to this page. */
export function signInHref() {
  return withReturn(state.config?.sign_in, "post_login_redirect_uri");
}

export function signOutHref() {
  return withReturn(state.config?.sign_out, "post_logout_redirect_uri");
}

function withReturn(path, parameter) {
  if (!path) return null;
  const back = window.location.pathname; // the page itself (the hash is the page's state, not the server's)
  return `${path}?${parameter}=${encodeURIComponent(back)}`;
}
