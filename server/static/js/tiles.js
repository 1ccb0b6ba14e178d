// Student tiles of the dashboard: one compact button per attempt, and the filters.
import { el, kindLabel } from "./common.js";
import { formatNumber, t } from "./i18n.js";

const PRESENCE = { online: "online", reconnecting: "reconnecting", offline: "offline", submitted: "submitted" };
// A shape per state beside its word, so the state never rests on the tile's colour.
const PRESENCE_SHAPE = { online: "●", reconnecting: "◐", offline: "○", submitted: "✓", paused: "⏸" };

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
  const flagged = isFlagged(s);
  const src = thumbSrc(s);
  // The accessible name is the tile's own text (WCAG 2.5.3: what is seen is what is spoken);
  // the presence and the flag are words with a shape, never a colour alone.
  const button = el("button", {
    type: "button", class: `tile ${presence}${flagged ? " flagged" : ""}`, "data-attempt": s.id, onclick: () => onOpen(s.id),
  },
  src ? el("img", { class: "thumb", src, alt: "" }) : el("span", { class: "thumb", "aria-hidden": "true" }),
  el("bdi", { class: "name", translate: "no" }, name),
  el("span", { class: "line presence", "data-presence": state },
    el("span", { class: "shape", "aria-hidden": "true" }, PRESENCE_SHAPE[state] || "○"), " ", t(`presence.${state}`),
    s.hand ? el("span", { class: "hand" }, " ✋ ", t("tile.hand")) : ""),
  el("span", { class: "line" }, el("span", { class: "progress-text" }, `${formatNumber(answered)}/${formatNumber(total)}`), " ", t("tile.done")),
  el("span", { class: "line wide" }, flagged ? el("span", { class: "flag" }, el("span", { "aria-hidden": "true" }, "⚑ "), t("tile.flagged"), " · ") : "",
    t("tile.score"), " ", el("span", { class: `score${score >= 5 ? " high" : ""}` }, formatNumber(score)),
    " · ", el("span", { class: "last" }, s.last_violation_kind ? kindLabel(s.last_violation_kind) : t("tile.no_flags"))),
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
    this.counts.textContent = t("tiles.counts", {
      students: all.length, online, flagged: all.filter(isFlagged).length,
      submitted: all.filter((s) => s.presence === "submitted").length,
    });
    if (!visible.length) {
      this.list.replaceChildren(el("li", { class: "muted" }, t(all.length ? "tiles.no_match" : "tiles.none_yet")));
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
