// How values read on screen. Times are shown in the browser's locale and zone; the ISO value
// stays in <time datetime> and the tooltip, so nothing is lost to formatting.

import { h } from "./dom.js";

const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "medium" });
const integer = new Intl.NumberFormat();
const decimal = new Intl.NumberFormat(undefined, { maximumFractionDigits: 1 });

export function formatTime(iso) {
  if (!iso) return "—";
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso : dateTime.format(date);
}

/** <time> element with the local rendering and the exact instant as tooltip. */
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

/** ISO instant → the value a datetime-local input shows (local wall time, seconds precision). */
export function isoToLocalInput(iso) {
  if (!iso) return "";
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return "";
  const local = new Date(date.getTime() - date.getTimezoneOffset() * 60_000);
  return local.toISOString().slice(0, 19);
}

/** datetime-local value (local wall time) → ISO instant in UTC, as the API and the URL take it. */
export function localInputToIso(value) {
  if (!value) return "";
  const date = new Date(value); // a date-time without offset is local time
  return Number.isNaN(date.getTime()) ? "" : date.toISOString().replace(".000Z", "Z");
}
