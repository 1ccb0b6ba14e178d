// The live room dashboard: roster tiles, live feed, per-student drawer with controls.
import { $, api, appConfig, call, claimsOf, confirmDialog, connect, el, formatTime, kindLabel, show, showLogin, signOut, teacherCredential } from "./common.js";
import { TileGrid } from "./tiles.js";
import { evidenceNode, renderTimeline } from "./timeline.js";
import { LiveViewer } from "./teacher-live.js";
import { count } from "./counts.js";
import { showHome } from "./home.js";

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
    el("button", { type: "button", class: "small secondary", onclick: () => openDrawer(v.attempt_id) }, nameOf(v.attempt_id)), " ",
    el("span", { class: "sev" }, kindLabel(v.kind)), ` +${v.severity} (${v.source})`,
    // The detector's own words (`explanation`, the same field as the drawer's and the review's).
    el("div", { class: "muted small explanation" }, v.explanation || ""));
  if (v.evidence_id) item.append(evidenceNode(token, v.evidence_id));
  feed(item);
}

function wireSocket() {
  socket = connect("/teacher", token);
  viewer = new LiveViewer(socket, config.ice_servers);
  socket.on("connect", watch);
  // Live deltas were lost between nodes (Redis was away): re-read the roster and feed.
  socket.on("resync", watch);
  socket.on("disconnect", () => setConn("Offline — reconnecting…", "bad"));
  socket.on("connect_error", (err) => {
    const code = err.data?.code;
    if (code) {
      fatal(code === "token_expired" ? "Your token has expired: sign in again." : `Cannot connect: ${err.data.message || code}`);
      setConn("Not connected", "bad");
    } else setConn("Offline — reconnecting…", "bad");
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
        el("button", { type: "button", class: "small secondary", onclick: () => openDrawer(h.attempt_id) }, nameOf(h.attempt_id)),
        el("strong", { class: "hand" }, " raised a hand"), h.text ? `: “${h.text}”` : ""));
    }
  });
  socket.on("control", (c) => update(c.attempt_id, { status: c.status, deadline: c.deadline }));
  socket.on("announce", (a) => feed(el("li", {}, el("span", { class: "t muted" }, formatTime(new Date().toISOString())),
    ` Announcement by ${a.by}: “${a.text}”`)));
}

// Errors that pass by themselves (a database or Redis restart, a full node): watch again.
const RETRY_WATCH = new Set(["unavailable", "busy", "rate_limited", "timeout", "capacity"]);

async function watch() {
  setConn("Online", "ok");
  const ack = await call(socket, "watch", { room_id: roomId });
  if (!ack.ok) {
    if (RETRY_WATCH.has(ack.error?.code)) {
      const wait = Math.max(0.5, Number(ack.error?.retry_after) || 2);
      setConn(`Waiting for the server (${ack.error.code}); retrying in ${wait} s`, "warn");
      setTimeout(() => { if (socket.connected) watch(); }, wait * 1000);
      return;
    }
    fatal(`Cannot watch this room: ${ack.error?.message || ack.error?.code}`);
    return;
  }
  $("#room-title").textContent = `${ack.room.name} — ${ack.exam.title}`;
  document.title = `${ack.room.name} — dashboard`;
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
  $("#drawer-name").textContent = s.student_name || s.student_id;
  $("#drawer-summary").textContent = `${s.presence}, ${s.status || "active"} · answered ${s.answered || 0}/${s.total_questions || 0}` +
    ` · signal weight ${Math.round((s.score || 0) * 10) / 10} (flags count only once a reviewer confirms them)` +
    ` · ${count(s.violations || 0, "flag")}`;
}

async function loadTimeline() {
  const list = $("#drawer-timeline");
  try {
    const data = await api(token, "GET", `/api/attempts/${encodeURIComponent(openAttempt)}/timeline`);
    renderTimeline(list, data.entries, { token });
  } catch (err) {
    list.replaceChildren(el("li", { class: "notice error" }, `Timeline unavailable: ${err.message}`));
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

function closeDrawer() {
  viewer.close();
  $("#live-video").srcObject = null;
  show($("#live-stop"), false);
  show($("#live-start"));
  $("#drawer").close();
}

const CONFIRM = {
  terminate: "Terminate this attempt? The student cannot continue and the attempt is closed.",
  pause: "Pause this student's exam? Their timer stops and answers are refused until you resume.",
};

async function control(action) {
  const payload = { attempt_id: openAttempt, action };
  const text = $("#ctl-text").value.trim();
  if (action === "warn" || action === "message") {
    if (!text) {
      $("#ctl-result").textContent = "Write the text first.";
      $("#ctl-text").focus();
      return;
    }
    payload.text = text;
  }
  if (action === "extend") payload.minutes = Number($("#ctl-minutes").value);
  if (CONFIRM[action] && !(await confirmDialog(`${nameOf(openAttempt)}: ${CONFIRM[action]}`, action === "pause" ? "Pause" : "Terminate"))) return;
  const ack = await call(socket, "control", payload);
  if (ack.ok) {
    $("#ctl-result").textContent = `Done: ${action}.`;
    if (action === "warn" || action === "message") $("#ctl-text").value = "";
    update(openAttempt, { status: ack.attempt.status });
    loadTimeline();
  } else {
    $("#ctl-result").textContent = `Not done: ${ack.error?.message || ack.error?.code}`;
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
    $("#live-state").textContent = "closed";
    show($("#live-stop"), false);
    show($("#live-start"));
  });
  $("#announce-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const text = $("#announce-text").value.trim();
    if (!text) return;
    const ack = await call(socket, "announce", { text, room_id: roomId });
    if (ack.ok) $("#announce-text").value = "";
    else fatal(`Announcement not sent: ${ack.error?.message || ack.error?.code}`);
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
    document.title = "My rooms";
    $("#room-title").textContent = "My rooms";
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
}

main();
