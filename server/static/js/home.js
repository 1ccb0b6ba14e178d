// The teacher home page (/teacher/ without ?room=): my exams and rooms, my role in each, and
// each room's live counts, with links to the dashboard, the review page and the editor.
//
// The counts are polled (GET /api/me/rooms every few seconds) rather than pushed over
// /teacher: the page needs three numbers per room, not every event; watching each room would
// enter it (keeping it hosted) and audit a "room.watch" per room per visit, and a socket per
// teacher per room pushed on every violation would cost more than one indexed query per poll.
// A poll also works the same behind any node of a cluster (presence comes from Redis there).
import { formatClock, formatNumber, t } from "./i18n.js";
import { $, api, appConfig, el, show } from "./common.js";

export const POLL_MS = 3000;
// The room roles and their actions come from /app-config.json (rooms/roles.py); an admin,
// who holds no room role, may do everything.
let roles = new Map();
const label = (role) => roles.get(role)?.label || (role === "admin" ? t("role.admin") : role);
const may = (role, action) => role === "admin" || Boolean(roles.get(role)?.actions.includes(action));

function roomRow(room) {
  const q = (params) => `?${new URLSearchParams(params)}`;
  const links = el("td", { class: "links" });
  if (may(room.role, "room.watch")) links.append(el("a", { href: `/teacher/${q({ room: room.id })}` }, t("home.link_dashboard")), " ");
  if (may(room.role, "room.attempts")) links.append(el("a", { href: `/teacher/review.html${q({ room: room.id })}` }, t("home.link_review")));
  if (may(room.role, "exam.add_room")) links.append(" ", el("a", { href: `/teacher/editor.html${q({ exam: room.exam_id, room: room.id })}` }, t("home.link_editor")));
  return el("tr", { "data-room": room.id },
    el("td", { translate: "no", dir: "auto" }, room.exam_title),
    el("td", { translate: "no", dir: "auto" }, room.name),
    el("td", { class: "role" }, label(room.role)),
    el("td", { class: "online num" }, formatNumber(room.online)),
    el("td", { class: "flagged num" }, formatNumber(room.flagged)),
    el("td", { class: "submitted num" }, formatNumber(room.submitted)),
    el("td", { class: "attempts num" }, formatNumber(room.attempts)),
    links);
}

function render(data) {
  const body = $("#home-rooms tbody");
  if (!data.rooms.length) {
    body.replaceChildren(el("tr", {}, el("td", { colspan: 8, class: "muted" }, t("home.no_rooms"))));
    return;
  }
  body.replaceChildren(...data.rooms.map(roomRow));
  $("#home-h").textContent = t(data.role === "admin" ? "home.all_rooms" : "home.title");
}

export async function showHome(token) {
  show($("#home"));
  roles = new Map(((await appConfig()).room_roles || []).map((r) => [r.id, r]));
  $("#picker-form").addEventListener("submit", (e) => {
    e.preventDefault();
    location.search = `?room=${encodeURIComponent($("#picker-room").value.trim())}`;
  });
  let timer = null;
  const status = $("#home-status");
  async function refresh() {
    try {
      render(await api(token, "GET", "/api/me/rooms"));
      status.textContent = t("home.updated", { time: formatClock(new Date()) });
      status.className = "muted";
    } catch (err) {
      status.textContent = err.status === 401 ? t("home.token_invalid") : t("home.cannot_load", { reason: err.message });
      status.className = "notice error";
      if (err.status === 401) return; // no point asking again with the same token
    }
    // Not while the tab is hidden: the next visit refreshes at once.
    if (!document.hidden) timer = setTimeout(refresh, POLL_MS);
  }
  document.addEventListener("visibilitychange", () => {
    clearTimeout(timer);
    if (!document.hidden) refresh();
  });
  refresh();
}
