// Windows and accommodations in words, for the student's page (docs/exams.md, "Schedule and
// accommodations"). Times come from the server in ISO 8601 with an offset; they are shown in
// the reader's own time zone and language (Intl.DateTimeFormat).

import { lang, t } from "./i18n.js";

// "Monday 2 March 2026 at 10:00" in the reader's language and time zone.
export function formatWhen(iso) {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return iso;
  return new Intl.DateTimeFormat(lang, { dateStyle: "full", timeStyle: "short" }).format(date);
}

// The words for a join refused outside the window (the error's details say when), or null.
export function windowRefusal(error) {
  const d = error?.details || {};
  switch (error?.code) {
    case "not_open_yet": return t("window.not_open_yet", { when: formatWhen(d.opens_at) });
    case "too_late": return t("window.too_late", { when: formatWhen(d.latest_start) });
    case "closed": return t("window.closed", { when: formatWhen(d.closes_at) });
    default: return null;
  }
}

// How long to wait before joining again after `not_open_yet` (ms), or null for another refusal.
export function retryDelay(error, now = Date.now()) {
  if (error?.code !== "not_open_yet") return null;
  const opens = Date.parse(error.details?.opens_at);
  if (Number.isNaN(opens)) return null;
  // A little after the opening (clocks differ by a second or two), and at least every minute
  // meanwhile: a teacher may open the window earlier.
  const wait = opens - now + 1500 + Math.random() * 1500;
  return Math.min(60_000, Math.max(1000, wait));
}

// "You have 15 extra minutes. The rules “No face” and “Tab hidden” are off for you." or "".
export function accommodationSentence(acc) {
  if (!acc) return "";
  const parts = [];
  if (acc.extra_seconds > 0) {
    const minutes = Math.round((acc.extra_minutes ?? acc.extra_seconds / 60) * 10) / 10;
    parts.push(t("accommodation.extra_time", { count: minutes }));
  }
  const rules = (acc.rules_off || []).map((r) => `“${r.label || r.id}”`);
  if (rules.length) {
    const names = new Intl.ListFormat(lang, { type: "conjunction" }).format(rules);
    parts.push(t("window.rules_off", { count: rules.length, rules: names }));
  }
  return parts.join(" ");
}

// "The exam window closes on Monday 2 March 2026 at 11:30: …" or "".
export function hardCloseSentence(clock) {
  if (!clock?.hard_close_at) return "";
  return t("window.hard_close", { when: formatWhen(clock.hard_close_at) });
}
