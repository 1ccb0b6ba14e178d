// A window's four inputs (opens, latest start, closes, hard close), shared by the room page and
// the exam editor. <input type="datetime-local"> holds a wall-clock time without a zone; the
// server wants an instant with its offset, and new Date("2026-03-02T09:00") reads it as local.
import { $ } from "./common.js";

export function toInstant(value) {
  return value ? new Date(value).toISOString() : null;
}

export function toLocalInput(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

// The window in inputs #<prefix>-opens, -latest, -closes and -hard, or null when all are empty.
export function readWindow(prefix) {
  const w = {
    opens_at: toInstant($(`#${prefix}-opens`).value),
    latest_start: toInstant($(`#${prefix}-latest`).value),
    closes_at: toInstant($(`#${prefix}-closes`).value),
    hard_close: $(`#${prefix}-hard`).checked,
  };
  return w.opens_at || w.latest_start || w.closes_at || w.hard_close ? w : null;
}

export function fillWindow(prefix, w) {
  const shown = w || {};
  $(`#${prefix}-opens`).value = toLocalInput(shown.opens_at);
  $(`#${prefix}-latest`).value = toLocalInput(shown.latest_start);
  $(`#${prefix}-closes`).value = toLocalInput(shown.closes_at);
  $(`#${prefix}-hard`).checked = Boolean(shown.hard_close);
}
