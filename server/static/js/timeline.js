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
      const value = Array.isArray(entry.value)
        ? t("timeline.options", { list: entry.value.map((v) => formatNumber(v + 1)).join(", ") || t("timeline.none") })
        : typeof entry.value === "number" ? t("timeline.option", { n: entry.value + 1 }) : `“${String(entry.value).slice(0, 120)}”`;
      return t("timeline.answered", { question: entry.question_id, value });
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

// options: {token, review: async (violationId, decision) => void | null}
export function renderTimeline(list, entries, { token, review = null } = {}) {
  list.replaceChildren();
  if (!entries.length) list.append(el("li", { class: "muted" }, t("timeline.nothing_yet")));
  for (const entry of entries) {
    const time = el("span", { class: "t" }, formatTime(entry.at));
    if (entry.type !== "violation") {
      list.append(el("li", { class: entry.type }, time, describe(entry)));
      continue;
    }
    const status = el("span", { class: "review-state muted" }, entry.review ? ` — ${t(`review_state.${entry.review === "confirmed" ? "confirmed" : "dismissed"}`)}` : "");
    const item = el("li", { class: "violation" }, time,
      el("span", { class: "what" }, kindLabel(entry.kind)),
      // A server flag's plain-words explanation is the text the live feed showed; the generic reason otherwise.
      ` (${t(`source.${entry.source === "server" ? "server" : "client"}`)}, `, el("span", { class: "num" }, `+${formatNumber(entry.severity)}`), ") ",
      el("span", { class: "muted", translate: "no" }, entry.details?.explanation || entry.reason || ""), status);
    if (entry.evidence_id) item.append(evidenceNode(token, entry.evidence_id));
    if (review) {
      const message = el("span", { class: "muted", role: "status" });
      const decide = (decision) => async () => {
        message.textContent = t("save.saving");
        try {
          await review(entry.id, decision);
          status.textContent = ` — ${t(`review_state.${decision}`)}`;
          message.textContent = "";
        } catch (err) {
          message.textContent = err.status === 404
            ? t("timeline.review_unavailable")
            : t("timeline.review_failed", { reason: err.message });
        }
      };
      item.append(el("div", { class: "row" },
        el("button", { class: "small secondary", type: "button", onclick: decide("confirmed") }, t("timeline.confirm_flag")),
        el("button", { class: "small secondary", type: "button", onclick: decide("dismissed") }, t("timeline.dismiss_flag")),
        message));
    }
    list.append(item);
  }
}

// Whether the server offers POST /api/violations/{id}/review (read from its OpenAPI document).
export async function reviewAvailable() {
  try {
    const doc = await (await fetch("/api/openapi.json")).json();
    return Object.keys(doc.paths || {}).some((p) => /^\/api\/violations\/\{[^}]+\}\/review$/.test(p));
  } catch {
    return false;
  }
}

export function postReview(token) {
  return (violationId, decision) => api(token, "POST", `/api/violations/${violationId}/review`, { decision });
}
