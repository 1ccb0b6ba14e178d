// An attempt's timeline (dashboard drawer and review page) and evidence images.
import { formatNumber, has, t } from "./i18n.js";
import { api, el, formatTime, kindLabel } from "./common.js";

const evidenceCache = new Map();

// Evidence needs the bearer token, so it is fetched and shown from a blob: URL.
export function evidenceNode(token, evidenceId) {
  const holder = el("span", { class: "evidence-holder" }, el("span", { class: "muted" }, t("timeline.loading_evidence")));
  let pending = evidenceCache.get(evidenceId);
  if (!pending) {
    pending = api(token, "GET", `/api/evidence/${encodeURIComponent(evidenceId)}`)
      .then((blob) => (blob instanceof Blob ? URL.createObjectURL(blob) : null));
    evidenceCache.set(evidenceId, pending);
    pending.catch(() => evidenceCache.delete(evidenceId));
  }
  pending.then((url) => {
    if (!url) throw new Error("not an image");
    const img = el("img", { class: "evidence", src: url, alt: t("timeline.evidence_alt", { id: evidenceId }) });
    holder.replaceChildren(el("a", { href: url, target: "_blank", rel: "noopener", title: t("timeline.open_evidence") }, img));
  }).catch((err) => {
    holder.replaceChildren(el("span", { class: "muted" },
      err.status === 404 ? t("timeline.evidence_missing") : t("timeline.evidence_failed", { reason: err.message })));
  });
  return holder;
}

function describe(entry) {
  const d = entry.details || {};
  switch (entry.type) {
    case "answer": {
      // The server gives the chosen option's text (several: joined), not its index.
      const value = entry.answer_text ?? String(entry.value);
      return t("timeline.answered", { question: entry.question_id, value: `“${value.slice(0, 200)}”` });
    }
    case "control": {
      const p = entry.params || {};
      const extra = p.text ? `: “${p.text}”` : p.minutes ? ` ${t("timeline.by_minutes", { count: p.minutes })}` : "";
      return `${entry.actor} — ${has(`control.${entry.action}`) ? t(`control.${entry.action}`) : entry.action}${extra}`;
    }
    case "join": return t("timeline.joined");
    case "resume": return t("timeline.rejoined");
    case "submit": return t("timeline.submitted", { reason: has(`end.${d.reason || "student"}`) ? t(`end.${d.reason || "student"}`) : d.reason });
    case "hand": return d.raised === false ? t("timeline.lowered_hand") : t("timeline.raised_hand") + (d.text ? `: “${d.text}”` : "");
    case "network_gap": return t("timeline.network_gap", { seconds: Math.round(d.seconds ?? 0) });
    default: return `${entry.type}${Object.keys(d).length ? ` ${JSON.stringify(d)}` : ""}`;
  }
}

// Everything recorded, as a list (the dashboard's drawer, the review page's list); decisions
// are taken on the review page's flag cards (js/review.js).
export function renderTimeline(list, entries, { token } = {}) {
  list.replaceChildren();
  if (!entries.length) list.append(el("li", { class: "muted" }, t("timeline.nothing_yet")));
  for (const entry of entries) {
    const time = el("span", { class: "t" }, formatTime(entry.at));
    if (entry.type !== "violation") {
      list.append(el("li", { class: entry.type }, time, describe(entry)));
      continue;
    }
    const state = entry.review ? t(`review_state.${entry.review === "confirmed" ? "confirmed" : "dismissed"}`) : t("review_state.undecided");
    const status = el("span", { class: "review-state muted" }, ` — ${state}`, entry.review_note ? ": " : "",
      entry.review_note ? el("bdi", { dir: "auto" }, `“${entry.review_note}”`) : "");
    const item = el("li", { class: "violation", "data-id": entry.id }, time,
      el("span", { class: "what" }, kindLabel(entry.kind)),
      // The detector's own words, the same text (and field) as the live feed's.
      ` (${t(`source.${entry.source === "server" ? "server" : "client"}`)}) `,
      el("span", { class: "explanation", translate: "no", lang: "en" }, entry.explanation || ""), status);
    if (entry.evidence_id) item.append(evidenceNode(token, entry.evidence_id));
    list.append(item);
  }
}

// Resolves to the stored note (the server keeps who decided and when with it).
export function postReview(token) {
  return (violationId, decision, note = "") => api(token, "POST", `/api/violations/${violationId}/review`, { decision, note })
    .then((decided) => decided.review_note);
}
