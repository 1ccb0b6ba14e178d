// Windows and accommodations in words, for the student's page (docs/exams.md, "Schedule and
// accommodations"). Times come from the server in ISO 8601 with an offset; they are shown in
// the reader's own time zone and language (Intl.DateTimeFormat).

// "Monday 2 March 2026 at 10:00" in the reader's locale and time zone.
export function formatWhen(iso) {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return iso;
  return new Intl.DateTimeFormat(undefined, { dateStyle: "full", timeStyle: "short" }).format(date);
}

// The words for a join refused outside the window, or null for another error.
export function windowRefusal(error) {
  const d = error?.details || {};
  switch (error?.code) {
    case "not_open_yet":
      return `This exam is not open yet. It opens on ${formatWhen(d.opens_at)} (your time). ` +
        "Keep this page open: it lets you in then.";
    case "too_late":
      return `The last moment to start this exam was ${formatWhen(d.latest_start)} (your time). ` +
        "Contact your teacher or institution.";
    case "closed":
      return `This exam closed on ${formatWhen(d.closes_at)} (your time). Contact your teacher or institution.`;
    default:
      return null;
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

function minutesText(minutes) {
  const n = Math.round(minutes * 10) / 10;
  return `${n} extra minute${n === 1 ? "" : "s"}`;
}

function list(items) {
  if (items.length <= 1) return items.join("");
  return `${items.slice(0, -1).join(", ")} and ${items[items.length - 1]}`;
}

// "You have 15 extra minutes; the rules “No face” and “Tab hidden” are off for you." or "".
export function accommodationSentence(acc) {
  if (!acc) return "";
  const parts = [];
  if (acc.extra_seconds > 0) parts.push(`You have ${minutesText(acc.extra_minutes ?? acc.extra_seconds / 60)}`);
  const rules = (acc.rules_off || []).map((r) => `“${r.label || r.id}”`);
  if (rules.length) {
    const words = `the ${rules.length === 1 ? "rule" : "rules"} ${list(rules)} ${rules.length === 1 ? "is" : "are"} off for you`;
    parts.push(parts.length ? words : words[0].toUpperCase() + words.slice(1));
  }
  return parts.length ? `${parts.join("; ")}.` : "";
}

// "The exam window closes on Monday 2 March 2026 at 11:30: …" or "".
export function hardCloseSentence(clock) {
  if (!clock?.hard_close_at) return "";
  return `The exam window closes on ${formatWhen(clock.hard_close_at)} (your time): ` +
    "your exam is submitted then, time left or not.";
}
