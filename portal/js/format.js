// How values read on screen. Every time carries its zone: the browser's own ("14:03:05 CET") or,
// after the header's switch, UTC ("13:03:05 UTC"); the choice is kept for the browser. The ISO
// instant stays in <time datetime> and the tooltip, so nothing is lost to formatting, and a switch
// re-renders every <time> on the page in place.

import { h } from "./dom.js";

const ZONE_KEY = "rebound.timeZone";
const integer = new Intl.NumberFormat();
const decimal = new Intl.NumberFormat(undefined, { maximumFractionDigits: 1 });

let utc = localStorage.getItem(ZONE_KEY) === "utc";
let dateTime;
let clock;

function makeFormatters() {
  const zone = utc ? { timeZone: "UTC" } : {};
  // timeStyle "long" is the shortest style that names the zone.
  dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "long", ...zone });
  clock = new Intl.DateTimeFormat(undefined, { timeStyle: "long", ...zone });
}
makeFormatters();

/** True when times are shown in UTC, false for the browser's zone. */
export function showsUtc() {
  return utc;
}

/** The zone times are shown in, as a person reads it: "UTC", or the browser's "CET" / "GMT+1". */
export function zoneName({ date = new Date(), local = false } = {}) {
  if (utc && !local) return "UTC";
  const part = new Intl.DateTimeFormat(undefined, { timeZoneName: "short" }).formatToParts(date).find((p) => p.type === "timeZoneName");
  return part ? part.value : "local time";
}

/** Switch between the browser's zone and UTC: every <time> shown is rewritten, listeners re-render what they own. */
export function setUtc(next) {
  utc = Boolean(next);
  localStorage.setItem(ZONE_KEY, utc ? "utc" : "local");
  makeFormatters();
  for (const element of document.querySelectorAll("time[datetime]")) element.textContent = formatTime(element.dateTime);
  for (const listener of zoneListeners) listener();
}

const zoneListeners = new Set();
/** Called after every switch of the zone; returns the unsubscribe. */
export function onZoneChange(listener) {
  zoneListeners.add(listener);
  return () => zoneListeners.delete(listener);
}

export function formatTime(iso) {
  if (!iso) return "—";
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso : dateTime.format(date);
}

/** "14:03:05 CET": a time of today, such as when a panel was last updated. */
export function timeOfDay(date) {
  return clock.format(date);
}

/** <time> element with the rendering (zone included) and the exact instant as tooltip. */
export function timeElement(iso) {
  if (!iso) return h("span", { class: "muted" }, "—");
  return h("time", { datetime: iso, title: iso }, formatTime(iso));
}

export function formatCount(value) {
  return value === null || value === undefined ? "—" : integer.format(value);
}

export function plural(count, one, many = `${one}s`) {
  return `${formatCount(count)} ${count === 1 ? one : many}`;
}

/** Seconds → "45 s", "3 min 05 s", "2 h 04 min", "3 d 4 h". */
export function formatDuration(seconds) {
  if (seconds === null || seconds === undefined || Number.isNaN(seconds)) return "—";
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, "0")} s`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ${String(Math.floor((s % 3600) / 60)).padStart(2, "0")} min`;
  return `${Math.floor(s / 86400)} d ${Math.floor((s % 86400) / 3600)} h`;
}

/** "3 min ago" style, for last-sweep and similar. */
export function formatAgo(iso, now = Date.now()) {
  if (!iso) return "never";
  return `${formatDuration((now - new Date(iso).getTime()) / 1000)} ago`;
}

export function formatRate(perSecond) {
  return perSecond === null || perSecond === undefined ? "—" : `${decimal.format(perSecond)}/s`;
}

export function formatBytes(bytes) {
  if (bytes === null || bytes === undefined) return "—";
  if (bytes < 1024) return `${plural(bytes, "byte")}`;
  const units = ["KiB", "MiB", "GiB"];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${decimal.format(value)} ${units[unit]}`;
}

/** ISO instant → the value a datetime-local input shows (wall time in the zone shown, seconds precision). */
export function isoToLocalInput(iso) {
  if (!iso) return "";
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return "";
  const offset = utc ? 0 : date.getTimezoneOffset();
  return new Date(date.getTime() - offset * 60_000).toISOString().slice(0, 19);
}

/** datetime-local value (wall time in the zone shown) → ISO instant in UTC, as the API and the URL take it. */
export function localInputToIso(value) {
  if (!value) return "";
  const date = new Date(utc ? `${value}Z` : value); // a date-time without offset is local time
  return Number.isNaN(date.getTime()) ? "" : date.toISOString().replace(".000Z", "Z");
}
