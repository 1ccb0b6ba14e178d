// The teacher home page (/teacher/ without ?room=): my exams and rooms, my role in each, and
// each room's live counts, with links to the dashboard, the review page and the editor.
//
// The counts are polled (GET /api/me/rooms every few seconds) rather than pushed over
// /teacher: the page needs three numbers per room, not every event; watching each room would
// enter it (keeping it hosted) and audit a "room.watch" per room per visit, and a socket per
// teacher per room pushed on every violation would cost more than one indexed query per poll.
// A poll also works the same behind any node of a cluster (presence comes from Redis there).
import { $, api, appConfig, el, show } from "./common.js";

export const POLL_MS = 3000;
// The room roles and their actions come from /app-config.json (rooms/roles.py); an admin,
// who holds no room role, may do everything.
let roles = new Map();
const label = (role) => roles.get(role)?.label || (role === "admin" ? "Admin" : role);
const may = (role, action) => role === "admin" || Boolean(roles.get(role)?.actions.includes(action));

function roomRow(room) {
  const q = (params) => `?${new URLSearchParams(params)}`;
  const links = el("td", { class: "links" });
  if (may(room.role, "room.watch")) links.append(el("a", { href: `/teacher/${q({ room: room.id })}` }, "Dashboard"), " ");
  if (may(room.role, "room.attempts")) links.append(el("a", { href: `/teacher/review.html${q({ room: room.id })}` }, "Review"));
  if (may(room.role, "exam.add_room")) links.append(" ", el("a", { href: `/teacher/editor.html${q({ exam: room.exam_id, room: room.id })}` }, "Editor"));
  return el("tr", { "data-room": room.id },
    el("td", {}, room.exam_title),
    el("td", {}, room.name),
    el("td", { class: "role" }, label(room.role)),
    el("td", { class: "online" }, String(room.online)),
    el("td", { class: "flagged" }, String(room.flagged)),
    el("td", { class: "submitted" }, String(room.submitted)),
    el("td", { class: "attempts" }, String(room.attempts)),
    links);
}

function render(data) {
  const body = $("#home-rooms tbody");
  if (!data.rooms.length) {
    body.replaceChildren(el("tr", {}, el("td", { colspan: 8, class: "muted" }, "You hold no role in any room yet.")));
    return;
  }
  body.replaceChildren(...data.rooms.map(roomRow));
  $("#home-h").textContent = data.role === "admin" ? "All rooms" : "My rooms";
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
      status.textContent = `Updated ${new Date().toLocaleTimeString()}`;
      status.className = "muted";
    } catch (err) {
      status.textContent = err.status === 401 ? "Your token is no longer valid: sign out and in again." : `Cannot load your rooms: ${err.message}`;
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
