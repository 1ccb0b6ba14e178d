// The live room dashboard: roster tiles, live feed, per-student drawer with controls.
import { errorText, formatNumber, t, tNodes } from "./i18n.js";
import { $, api, appConfig, call, claimsOf, confirmDialog, connect, el, formatTime, kindLabel, show, showLogin, signOut, teacherCredential } from "./common.js";
import { TileGrid } from "./tiles.js";
import { evidenceNode, renderTimeline } from "./timeline.js";
import { LiveViewer } from "./teacher-live.js";
import { showHome } from "./home.js";
import { showNotJoined } from "./lti-roster.js";
import { RoomSchedule } from "./room-schedule.js";

// Names, titles and texts people typed: isolated for bidirectional text, never translated.
const NAME = (text) => el("bdi", { translate: "no" }, text);
const TOKEN_KEY = "proctor.teacher.token";
const token = await teacherCredential(TOKEN_KEY);
const roomId = new URLSearchParams(location.search).get("room");
const students = new Map(); // attempt id -> roster entry
let socket = null;
let grid = null;
let viewer = null;
let openAttempt = null;
let config = { ice_servers: [] };

const setConn = (text, cls) => { $("#conn").textContent = text; $("#conn").className = `conn ${cls}`; };
const fatal = (text) => { $("#fatal").textContent = text; show($("#fatal")); };
const nameOf = (id) => students.get(id)?.student_name || students.get(id)?.student_id || "a student";
let renderQueued = false;
function render() {
  if (renderQueued) return;
  renderQueued = true;
  requestAnimationFrame(() => { renderQueued = false; grid.render(students); });
}

function update(attemptId, changes) {
  const s = students.get(attemptId) || { id: attemptId, presence: "online", answered: 0, violations: 0, score: 0 };
  students.set(attemptId, Object.assign(s, changes));
  render();
  if (openAttempt === attemptId) summary();
}

function feed(item) {
  const list = $("#feed");
  list.querySelector(".empty")?.remove();
  list.prepend(item);
  while (list.children.length > 200) list.lastChild.remove();
}

function onViolation(v) {
  const s = students.get(v.attempt_id);
  update(v.attempt_id, {
    violations: (s?.violations || 0) + 1, score: v.score ?? s?.score, last_violation_kind: v.kind, last_violation_at: v.occurred_at,
  });
  feedViolation(v);
}

function feedViolation(v) {
  const item = el("li", { class: "violation", "data-kind": v.kind, "data-attempt": v.attempt_id },
    el("span", { class: "t muted" }, formatTime(v.occurred_at)), " ",
    el("button", { type: "button", class: "small secondary", onclick: () => openDrawer(v.attempt_id) }, NAME(nameOf(v.attempt_id))), " ",
    el("span", { class: "sev" }, el("span", { "aria-hidden": "true" }, "⚑ "), kindLabel(v.kind)), " ",
    el("span", { class: "num" }, `+${formatNumber(v.severity)}`), ` (${t(`source.${v.source === "server" ? "server" : "client"}`)})`,
    // The detector's own words (`explanation`, the same field as the drawer's and the review's).
    el("div", { class: "muted small explanation", translate: "no" }, v.explanation || ""));
  if (v.evidence_id) item.append(evidenceNode(token, v.evidence_id));
  feed(item);
}

function wireSocket() {
  socket = connect("/teacher", token);
  viewer = new LiveViewer(socket, config.ice_servers);
  socket.on("connect", watch);
  // Live deltas were lost between nodes (Redis was away): re-read the roster and feed.
  socket.on("resync", watch);
  socket.on("disconnect", () => setConn(t("conn.offline"), "bad"));
  socket.on("connect_error", (err) => {
    const code = err.data?.code;
    if (code) {
      fatal(code === "token_expired" ? t("teacher.token_expired") : t("teacher.cannot_connect", { reason: errorText(err.data) }));
      setConn(t("conn.not_connected"), "bad");
    } else setConn(t("conn.offline"), "bad");
  });
  socket.on("joined", (j) => update(j.attempt_id, {
    student_id: j.student_id, student_name: j.student_name, total_questions: j.total_questions,
    status: j.status, deadline: j.deadline, presence: "online",
  }));
  socket.on("presence", (p) => update(p.attempt_id, { presence: p.presence }));
  socket.on("progress", (p) => update(p.attempt_id, { answered: p.answered, total_questions: p.total }));
  socket.on("violation", onViolation);
  socket.on("submitted", (s) => update(s.attempt_id, { status: s.status, presence: "submitted" }));
  socket.on("thumbnail", (t) => update(t.attempt_id, { thumb: t.jpeg || t.data_url || t.image }));
  socket.on("hand", (h) => {
    update(h.attempt_id, { hand: h.raised !== false, student_name: h.student_name || nameOf(h.attempt_id) });
    if (h.raised !== false) {
      feed(el("li", { class: "hand" }, el("span", { class: "t muted" }, formatTime(new Date().toISOString())), " ",
        el("button", { type: "button", class: "small secondary", onclick: () => openDrawer(h.attempt_id) }, NAME(nameOf(h.attempt_id))),
        el("strong", { class: "hand" }, " ✋ ", t("feed.raised_hand")), h.text ? ": " : "", h.text ? NAME(h.text) : ""));
    }
  });
  socket.on("control", (c) => update(c.attempt_id, { status: c.status, deadline: c.deadline }));
  socket.on("announce", (a) => feed(el("li", {}, el("span", { class: "t muted" }, formatTime(new Date().toISOString())),
    " ", tNodes("feed.announcement_by", { by: NAME(a.by) }), ": ", NAME(a.text))));
}

// Errors that pass by themselves (a database or Redis restart, a full node): watch again.
const RETRY_WATCH = new Set(["unavailable", "busy", "rate_limited", "timeout", "capacity"]);

async function watch() {
  setConn(t("conn.online"), "ok");
  const ack = await call(socket, "watch", { room_id: roomId });
  if (!ack.ok) {
    if (RETRY_WATCH.has(ack.error?.code)) {
      const wait = Math.max(0.5, Number(ack.error?.retry_after) || 2);
      setConn(t("teacher.waiting_server", { code: ack.error.code, seconds: wait }), "warn");
      setTimeout(() => { if (socket.connected) watch(); }, wait * 1000);
      return;
    }
    fatal(t("teacher.cannot_watch", { reason: errorText(ack.error) }));
    return;
  }
  $("#room-title").replaceChildren(NAME(ack.room.name), " — ", NAME(ack.exam.title));
  document.title = t("teacher.dashboard_title", { room: ack.room.name });
  const old = new Map(students);
  students.clear();
  for (const s of ack.students) {
    const prev = old.get(s.id);
    students.set(s.id, { ...s, hand: prev?.hand, thumb: prev?.thumb });
  }
  // The feed restarts from the server's recent history (a reconnect must not duplicate it).
  $("#feed").querySelectorAll("li.violation").forEach((li) => li.remove());
  for (const v of ack.recent_violations || []) feedViolation(v);
  render();
}

// ---- the per-student drawer ----
function summary() {
  const s = students.get(openAttempt);
  if (!s) return;
  $("#drawer-name").replaceChildren(NAME(s.student_name || s.student_id));
  $("#drawer-summary").textContent = t("drawer.summary", {
    presence: t(`presence.${s.status === "paused" ? "paused" : s.presence || "offline"}`),
    answered: s.answered || 0, total: s.total_questions || 0,
    score: Math.round((s.score || 0) * 10) / 10, count: s.violations || 0,
  });
}

async function loadTimeline() {
  const list = $("#drawer-timeline");
  try {
    const data = await api(token, "GET", `/api/attempts/${encodeURIComponent(openAttempt)}/timeline`);
    renderTimeline(list, data.entries, { token });
  } catch (err) {
    list.replaceChildren(el("li", { class: "notice error" }, t("drawer.timeline_unavailable", { reason: err.message })));
  }
}

function openDrawer(attemptId) {
  openAttempt = attemptId;
  $("#ctl-result").textContent = "";
  $("#live-state").textContent = "";
  $("#drawer-review").href = `/teacher/review.html?room=${encodeURIComponent(roomId)}&attempt=${encodeURIComponent(attemptId)}`;
  summary();
  loadTimeline();
  const dialog = $("#drawer");
  if (!dialog.open) dialog.showModal();
}

// A closed drawer gives the focus back to the tile that opened it (the tile may have been
// re-rendered meanwhile, so it is looked up again rather than remembered).
function restoreFocus() {
  const tile = openAttempt && document.querySelector(`.tile[data-attempt="${CSS.escape(openAttempt)}"]`);
  tile?.focus();
}

function closeDrawer() {
  viewer.close();
  $("#live-video").srcObject = null;
  show($("#live-stop"), false);
  show($("#live-start"));
  $("#drawer").close();
}

const CONFIRM = { terminate: "confirm.terminate", pause: "confirm.pause" };

async function control(action) {
  const payload = { attempt_id: openAttempt, action };
  const text = $("#ctl-text").value.trim();
  if (action === "warn" || action === "message") {
    if (!text) {
      $("#ctl-result").textContent = t("drawer.write_first");
      $("#ctl-text").focus();
      return;
    }
    payload.text = text;
  }
  if (action === "extend") payload.minutes = Number($("#ctl-minutes").value);
  if (CONFIRM[action] && !(await confirmDialog(`${nameOf(openAttempt)}: ${t(CONFIRM[action])}`, t(action === "pause" ? "control.pause" : "control.terminate")))) return;
  const ack = await call(socket, "control", payload);
  if (ack.ok) {
    $("#ctl-result").textContent = t("drawer.done", { action: t(`control.${action}`) });
    if (action === "warn" || action === "message") $("#ctl-text").value = "";
    update(openAttempt, { status: ack.attempt.status });
    loadTimeline();
  } else {
    $("#ctl-result").textContent = t("drawer.not_done", { reason: errorText(ack.error) });
  }
}

function wireUi() {
  grid = new TileGrid($("#tiles"), $("#counts"), openDrawer);
  $("#filters").addEventListener("change", (e) => {
    grid.filter = e.target.value;
    render();
  });
  $("#drawer-close").addEventListener("click", closeDrawer);
  $("#drawer").addEventListener("cancel", () => viewer.close());
  $("#drawer").addEventListener("close", restoreFocus);
  for (const button of document.querySelectorAll("[data-action]")) {
    button.addEventListener("click", () => control(button.dataset.action));
  }
  $("#live-start").addEventListener("click", async () => {
    const opened = await viewer.open(openAttempt, $("#live-video"), (state) => { $("#live-state").textContent = state; });
    show($("#live-start"), !opened);
    show($("#live-stop"), opened);
  });
  $("#live-stop").addEventListener("click", () => {
    viewer.close();
    $("#live-video").srcObject = null;
    $("#live-state").textContent = t("live.closed");
    show($("#live-stop"), false);
    show($("#live-start"));
  });
  $("#announce-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const text = $("#announce-text").value.trim();
    if (!text) return;
    const ack = await call(socket, "announce", { text, room_id: roomId });
    if (ack.ok) $("#announce-text").value = "";
    else fatal(t("teacher.announce_failed", { reason: errorText(ack.error) }));
  });
}

async function main() {
  $("#logout").addEventListener("click", () => signOut(TOKEN_KEY, token));
  if (!token) {
    show($("#logout"), false);
    showLogin(TOKEN_KEY);
    return;
  }
  if (!roomId) {
    // No room named: the home page (my rooms, live counts); ?room=ID is the dashboard as before.
    document.title = t("home.title");
    $("#room-title").textContent = t("home.title");
    show($("#conn"), false); // no socket here: the page polls
    showHome(token);
    return;
  }
  $("#review-link").href = `/teacher/review.html?room=${encodeURIComponent(roomId)}`;
  config = { ...config, ...(await appConfig()) };
  show($("#dash"));
  show($("#announce-form"));
  wireUi();
  wireSocket();
  showNotJoined(token, roomId); // LTI rooms only: who of the course has not joined yet
  new RoomSchedule(token, roomId).start(); // the sitting's window and accommodations (REST)
}

main();
