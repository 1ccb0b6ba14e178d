// Student tiles of the dashboard: one compact button per attempt, and the filters.
import { el, kindLabel } from "./common.js";

const PRESENCE = { online: "online", reconnecting: "reconnecting", offline: "offline", submitted: "submitted" };

export function isFlagged(s) {
  return (s.violations || 0) > 0 || (s.score || 0) > 0;
}

export const FILTERS = {
  all: () => true,
  flagged: isFlagged,
  offline: (s) => s.presence === "offline" || s.presence === "reconnecting",
  hand: (s) => Boolean(s.hand),
};

function thumbSrc(s) {
  if (!s.thumb) return null;
  return s.thumb.startsWith("data:") ? s.thumb : `data:image/jpeg;base64,${s.thumb}`;
}

export function renderTile(s, onOpen) {
  const presence = PRESENCE[s.presence] || "offline";
  const state = s.status === "paused" ? "paused" : presence;
  const answered = s.answered || 0;
  const total = s.total_questions || 0;
  const score = Math.round((s.score || 0) * 10) / 10;
  const name = s.student_name || s.student_id;
  const label = `${name}: ${state}, answered ${answered} of ${total}, score ${score}` +
    (s.last_violation_kind ? `, latest: ${kindLabel(s.last_violation_kind)}` : "") + (s.hand ? ", hand raised" : "");
  const src = thumbSrc(s);
  const button = el("button", {
    type: "button", class: `tile ${presence}${isFlagged(s) ? " flagged" : ""}`, "aria-label": label, title: label,
    "data-attempt": s.id, onclick: () => onOpen(s.id),
  },
  src ? el("img", { class: "thumb", src, alt: "" }) : el("span", { class: "thumb", "aria-hidden": "true" }),
  el("span", { class: "name" }, name),
  el("span", { class: "line presence" }, state, s.hand ? el("span", { class: "hand" }, " ✋ hand") : ""),
  el("span", { class: "line" }, el("span", { class: "progress-text" }, `${answered}/${total}`), " done"),
  el("span", { class: "line wide" }, "score ", el("span", { class: `score${score >= 5 ? " high" : ""}` }, String(score)),
    " · ", el("span", { class: "last" }, s.last_violation_kind ? kindLabel(s.last_violation_kind) : "no flags")),
  el("progress", { max: String(total || 1), value: String(answered), "aria-hidden": "true" }));
  return el("li", {}, button);
}

// Re-render only what changed: a room of 40 students gets several updates a second.
export class TileGrid {
  constructor(list, counts, onOpen) {
    this.list = list;
    this.counts = counts;
    this.onOpen = onOpen;
    this.filter = "all";
    this.nodes = new Map();
  }

  render(students) {
    const visible = [...students.values()]
      .filter(FILTERS[this.filter])
      .sort((a, b) => (a.student_name || a.student_id).localeCompare(b.student_name || b.student_id));
    const keep = new Set(visible.map((s) => s.id));
    for (const [id, node] of this.nodes) {
      if (!keep.has(id)) {
        node.remove();
        this.nodes.delete(id);
      }
    }
    let previous = null;
    for (const s of visible) {
      const node = this.#node(s);
      if (previous ? previous.nextSibling !== node : this.list.firstChild !== node) {
        if (previous) previous.after(node);
        else this.list.prepend(node);
      }
      previous = node;
    }
    const all = [...students.values()];
    const online = all.filter((s) => s.presence === "online").length;
    this.counts.textContent = `${all.length} students · ${online} online · ${all.filter(isFlagged).length} flagged · ` +
      `${all.filter((s) => s.presence === "submitted").length} submitted`;
    if (!visible.length) {
      this.list.replaceChildren(el("li", { class: "muted" }, all.length ? "No student matches this filter." : "No student has joined yet."));
      this.nodes.clear();
    } else {
      this.list.querySelector(":scope > li.muted")?.remove();
    }
  }

  #node(s) {
    const key = JSON.stringify([s.presence, s.status, s.answered, s.total_questions, s.score, s.last_violation_kind, s.hand, s.thumb?.length, s.thumb?.slice(-32)]);
    let node = this.nodes.get(s.id);
    if (node && node.dataset.key === key) return node;
    const fresh = renderTile(s, this.onOpen);
    fresh.dataset.key = key;
    if (node) {
      const focused = node.contains(document.activeElement);
      node.replaceWith(fresh);
      if (focused) fresh.querySelector("button").focus();
    }
    this.nodes.set(s.id, fresh);
    return fresh;
  }
}
