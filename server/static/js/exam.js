// The student page: consent → system check → exam → done.
import { errorText, formatClock, t, tNodes, typed } from "./i18n.js";
import { $, api, appConfig, call, claimsOf, confirmDialog, connect, el, formatDuration, kindLabel, sessionStore, show, takeToken } from "./common.js";
import { runChecks, openCamera } from "./check.js";
import { Outbox } from "./outbox.js";
import { QuestionList } from "./questions.js";
import { watchLockdown } from "./lockdown.js";
import { AnalysisLink } from "./analysis.js";
import { SnapshotLink } from "./snapshots.js";
import { LiveView } from "./liveview.js";
import { accommodationSentence, hardCloseSentence, retryDelay, windowRefusal } from "./schedule-words.js";

const token = takeToken("proctor.student.token");
const claims = token ? claimsOf(token) : null;
const stateKey = `proctor.exam.${claims?.sub}.${claims?.room}`;
const state = JSON.parse(sessionStore.getItem(stateKey) || "{}");
const saveState = () => sessionStore.setItem(stateKey, JSON.stringify(state));

let config = { ice_servers: [], consent_version: "2026-12-v2" };
let socket = null;
let stream = null;
let outbox = null;
let questions = null;
let lockdown = null;
let analysis = null;
let liveView = null;
let clock = null;
let finished = false;
let handRaised = false;
let windowWait = null; // a join refused before the window opened waits for it
// The exam analyses speech: the consent names the microphone and the check asks for it.
let listening = false;

function screen(name) {
  for (const id of ["consent", "check", "exam", "done"]) show($(`#${id}`), id === name);
  $("#main").focus();
}

function fatal(text) {
  const box = $("#fatal");
  box.textContent = text;
  show(box);
}

function setConn(text, cls) {
  const node = $("#conn");
  node.textContent = text;
  node.className = `conn ${cls}`;
}

function updateBanner() {
  const waiting = outbox?.size || 0;
  const banner = $("#offline");
  if (socket && !socket.connected && state.started && !finished) {
    const text = waiting ? t("offline.waiting", { count: waiting }) : t("offline.reconnecting");
    // The banner is a polite live region: write only when the words change, not on every save.
    if (banner.textContent !== text) banner.textContent = text;
    show(banner);
  } else {
    show(banner, false);
  }
  strainUplink(waiting);
}

// Answers before analysis: answers waiting more than a moment lower the camera uplink to the
// server (analysis.js); it comes back 5 s after the outbox is empty. The page says so.
let strainTimer = null;
let strained = false;
function strainUplink(waiting) {
  if (!analysis || strained === waiting > 0) return; // only a change of state reschedules
  strained = waiting > 0;
  clearTimeout(strainTimer);
  const delay = strained ? (socket?.connected ? 1500 : 0) : 5000;
  strainTimer = setTimeout(() => analysis.lower(strained), delay);
}

function showUplink(encoding, lowered) {
  const note = $("#uplink-note");
  note.textContent = lowered ? t("uplink.lowered") : "";
  show(note, lowered);
  note.dataset.lowered = String(lowered);
  note.dataset.maxBitrate = encoding?.maxBitrate ?? "";
  // Which uplink gave way (tests and the console): the track (its bitrate above) or snapshots.
  note.dataset.transport = analysis instanceof SnapshotLink ? "snapshot" : "webrtc";
}

function addMessage(kind, text, by) {
  const list = $("#messages");
  list.querySelector(".empty")?.remove();
  const kinds = ["warning", "message", "announce", "info"];
  const label = t(`msg.${kinds.includes(kind) ? kind : "info"}`);
  list.prepend(el("li", { class: `msg ${kind}` },
    el("strong", {}, by ? tNodes("msg.from", { label, by: typed(by) }) : label), ": ",
    el("bdi", { translate: kind === "info" ? null : "no" }, text),
    el("span", { class: "muted small" }, " ", el("time", { class: "num" }, formatClock(new Date())))));
}

// ---- the clock: the server's remaining time, counted down from when it arrived ----
function setClock(c) {
  if (!c || c.remaining_seconds === undefined) return;
  const wasPaused = clock?.paused;
  clock = { remaining: Number(c.remaining_seconds), at: performance.now(), paused: Boolean(c.paused), status: c.status };
  show($("#timer"));
  show($("#paused"), clock.paused);
  questions?.setDisabled(clock.paused);
  if (wasPaused && !clock.paused) outbox?.resume();
  $("#window-note").textContent = hardCloseSentence(c);
  show($("#window-note"), Boolean(c.hard_close_at));
  if (c.status === "submitted" || c.status === "terminated") finish(c.status, c.end_reason);
  tick();
}

function tick() {
  if (!clock) return;
  const left = clock.paused ? clock.remaining : clock.remaining - (performance.now() - clock.at) / 1000;
  const value = $("#timer-value");
  value.textContent = clock.paused ? t("timer.paused", { time: formatDuration(left) }) : formatDuration(left);
  $("#timer").classList.toggle("low", left < 300 && !clock.paused);
  if (left <= 0 && !finished && !clock.paused) value.textContent = t("timer.up");
  announceThreshold(left);
}
setInterval(tick, 250);

// The timer itself is not a live region (a reader would hear every second); the thresholds are
// announced once each, politely, in #timer-alert: 10 minutes, 5 minutes, 1 minute left.
const THRESHOLDS = [600, 300, 60];
let announced = new Set();
function announceThreshold(left) {
  if (!clock || clock.paused) return;
  for (const seconds of THRESHOLDS) {
    if (left > seconds) announced.delete(seconds); // time was extended: announce again later
    else if (left > seconds - 30 && !announced.has(seconds)) {
      for (const smaller of THRESHOLDS) if (smaller >= seconds) announced.add(smaller);
      $("#timer-alert").textContent = t("timer.minutes_left", { count: seconds / 60 });
    }
  }
}

// ---- outbox results → save indicators ----
function onResult(message, ack) {
  if (message.event === "join") return;
  if (message.event !== "answer") return;
  const qid = message.payload.question_id;
  if (outbox.pending("answer", (p) => p.question_id === qid).length) return; // a newer one is on its way
  if (ack.ok) questions.setStatus(qid, "saved");
  else if (ack.error?.code === "paused") questions.setStatus(qid, "paused");
  else questions.setStatus(qid, "failed", errorText(ack.error));
  updateProgress();
}

function updateProgress() {
  if (questions) $("#progress-text").textContent = t("progress.answered", { answered: questions.answeredCount, count: questions.questions.length });
}

function onAnswer(qid, value) {
  outbox.put("answer", { question_id: qid, value });
  questions.setStatus(qid, socket.connected ? "saving" : "waiting");
  updateProgress();
}

function report(kind, occurredAt, details) {
  if (!outbox || finished || !state.started) return;
  outbox.put("event", { kind, occurred_at: occurredAt, details });
}

// ---- joining (first time, after a reconnect, after a reload) ----
async function join() {
  const ack = await call(socket, "join", { consent_version: state.consent_version || config.consent_version });
  if (!ack.ok) {
    // Outside the exam's window: say when, in the reader's time; before it opens, wait for it.
    const words = windowRefusal(ack.error);
    if (words) {
      fatal(words);
      setConn(t("conn.not_open"), "warn");
      const wait = retryDelay(ack.error);
      clearTimeout(windowWait);
      if (wait !== null) windowWait = setTimeout(join, wait);
      return;
    }
    const retry = ack.error?.retry_after;
    if (retry) {
      setConn(t("conn.waiting_seat"), "warn");
      setTimeout(join, retry * 1000);
    } else fatal(t("join.failed", { reason: errorText(ack.error) }));
    return;
  }
  const attemptId = ack.attempt.attempt_id;
  if (windowWait !== null) {
    clearTimeout(windowWait);
    windowWait = null;
    show($("#fatal"), false);
    setConn("Online", "ok");
  }
  showAccommodations(ack.accommodations);
  $("#exam-title").replaceChildren(typed(ack.exam.title));
  document.title = ack.exam.title;
  if (!questions) {
    outbox = new Outbox(attemptId, { onChange: updateBanner, onResult });
    outbox.attach(socket);
    questions = new QuestionList($("#questions"), ack.exam.questions, onAnswer);
    for (const [qid, value] of Object.entries(ack.answers || {})) {
      questions.setValue(qid, value);
      questions.setStatus(qid, "saved");
    }
    // Anything this device has not had acknowledged wins over the server's copy (it is newer).
    for (const m of outbox.pending("answer")) {
      questions.setValue(m.payload.question_id, m.payload.value);
      questions.setStatus(m.payload.question_id, "saving");
    }
    lockdown = watchLockdown(report);
    liveView = new LiveView(socket, () => stream, config.ice_servers, (on) => show($("#live-note"), on));
  }
  outbox.startAbove(ack.last_seq);
  setClock(ack.attempt);
  showAccommodations(ack.accommodations);
  updateProgress();
  if (finished) return;
  outbox.joined = true;
  outbox.flush();
  updateBanner();
  if (stream && !ack.analysis?.speaking) {
    // Not listened to (the exam does not, or an accommodation says so): the microphone goes.
    for (const track of stream.getAudioTracks()) { track.stop(); stream.removeTrack(track); }
  }
  if (ack.analysis?.enabled && stream) {
    // The node says how the camera reaches analysis; a rejoin may land on a node that
    // says otherwise.
    const Link = ack.analysis.transport === "snapshot" ? SnapshotLink : AnalysisLink;
    if (analysis && !(analysis instanceof Link)) {
      analysis.stop();
      analysis = null;
    }
    analysis ??=
      Link === SnapshotLink
        ? new SnapshotLink(socket, () => stream, ack.analysis.sample_interval_seconds, showUplink)
        : new AnalysisLink(socket, () => stream, config.ice_servers, showUplink);
    analysis.start();
  }
}

// ---- accommodations (step 12): what this student's accommodation changes, in plain words ----
// Hook: the join ack carries `accommodations` once that step lands: {extra_minutes?: number,
// rules_off?: [kind ids]} or just the list of kind ids (attempts.accommodations); the kinds'
// names come from the catalog. Until then the ack has no such field and nothing is shown.
function showAccommodations(acc) {
  // The attempts' stored form today is a list of the rule kinds switched off.
  if (Array.isArray(acc)) acc = { rules_off: acc };
  const box = $("#accommodations");
  const lines = [];
  if (acc?.extra_minutes) lines.push(t("accommodation.extra_time", { count: acc.extra_minutes }));
  for (const kind of acc?.rules_off || []) lines.push(t("accommodation.rule_off", { rule: kindLabel(kind?.id ?? kind) }));
  box.replaceChildren(...lines.map((line) => el("li", {}, line)));
  show($("#accommodations-box"), lines.length > 0);
}

// ---- screens ----
function showMicrophoneConsent() {
  for (const id of ["consent-mic-h", "consent-mic", "consent-mic-what"]) show($(`#${id}`), listening);
  show($("#consent-no-mic"), !listening);
}

// A speaking exam's page must come from /exam/?mic=<exam>: only that address gets a
// Permissions-Policy that lets the page ask for the microphone (server/http/pages.py). The
// token is already in sessionStorage (takeToken), so the reload keeps it out of the URL (a
// framed LTI page keeps its fragment and its lti=1, which lets the platform frame it).
async function needsMicrophonePage() {
  let exam;
  try {
    exam = await api(token, "GET", `/api/exams/${encodeURIComponent(claims.exam)}`);
  } catch {
    return false; // the consent screen reports an invalid link
  }
  listening = Boolean(exam.speaking_enabled);
  if (listening && new URLSearchParams(location.search).get("mic") !== claims.exam) {
    const framed = new URLSearchParams(location.search).get("lti") === "1" ? "&lti=1" : "";
    location.replace(`/exam/?mic=${encodeURIComponent(claims.exam)}${framed}${location.hash}`);
    return true;
  }
  return false;
}

async function showConsent() {
  screen("consent");
  showMicrophoneConsent();
  try {
    const exam = await api(token, "GET", `/api/exams/${encodeURIComponent(claims.exam)}`);
    $("#exam-title").replaceChildren(typed(exam.title));
    $("#consent-exam").replaceChildren(
      el("bdi", { translate: "no" }, exam.title), ": ",
      t("consent.summary", { count: exam.question_count ?? exam.questions.length, minutes: exam.duration_minutes }),
      claims.name ? " " : "", ...(claims.name ? tNodes("consent.signed_in_as", { name: typed(claims.name) }) : []));
    const days = exam.evidence_retention_days ?? exam.rules?.evidence_retention_days;
    if (days) {
      $("#consent-retention").textContent = t("consent.retention_days", { count: days });
    }
  } catch (err) {
    if (err.status === 401) fatal(t("fatal.invite_invalid_or_expired"));
  }
  $("#consent-form").addEventListener("submit", (e) => {
    e.preventDefault();
    if (!$("#consent-agree").checked) return;
    state.consented = true;
    state.consent_version = config.consent_version;
    saveState();
    showCheck();
  }, { once: true });
}

function socketReady() {
  if (socket.connected) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(t("check.unreachable"))), 10000);
    socket.once("connect", () => { clearTimeout(timer); resolve(); });
    socket.once("connect_error", (err) => {
      if (err.data?.code) { clearTimeout(timer); reject(new Error(errorText(err.data))); }
    });
  });
}

async function showCheck() {
  screen("check");
  const run = async () => {
    $("#start").disabled = true;
    const result = await runChecks($("#check-list"), $("#preview"), socketReady, stream, listening);
    stream = result.stream || stream;
    $("#start").disabled = !result.ok;
    if (result.ok) $("#start").focus();
  };
  $("#check-retry").onclick = run;
  $("#start").onclick = startExam;
  await run();
}

async function startExam() {
  $("#start").disabled = true;
  document.documentElement.requestFullscreen?.().catch(() => {});
  state.started = true;
  saveState();
  await enterExam();
}

async function enterExam() {
  screen("exam");
  if (!stream) stream = await openCamera(listening).catch((err) => { addMessage("info", err.message); return null; });
  $("#selfview").srcObject = stream;
  if (socket.connected) await join();
}

function finish(status, reason) {
  if (finished) return;
  finished = true;
  lockdown?.stop();
  liveView?.closeAll();
  analysis?.stop();
  for (const track of stream?.getTracks() || []) track.stop();
  if (document.fullscreenElement) document.exitFullscreen().catch(() => {});
  show($("#timer"), false);
  show($("#offline"), false);
  $("#done-text").textContent = t(status === "terminated" ? "done.terminated"
    : reason === "window_closed" ? "done.window_closed" : "done.submitted");
  screen("done");
}

async function submitExam() {
  questions.flushAll();
  const total = questions.questions.length;
  const ok = await confirmDialog(t("submit.confirm", { answered: questions.answeredCount, count: total }), t("submit.button"));
  if (!ok) return;
  $("#submit").disabled = true;
  const drained = await outbox.drain(8000);
  if (!drained && !(await confirmDialog(t("submit.unsaved", { count: outbox.size }), t("submit.anyway")))) {
    $("#submit").disabled = false;
    return;
  }
  const ack = await call(socket, "submit", {});
  if (ack.ok) finish(ack.attempt.status, ack.attempt.end_reason);
  else {
    $("#submit").disabled = false;
    addMessage("info", t("submit.failed", { reason: errorText(ack.error) }));
  }
}

function wireSocket() {
  socket = connect("/student", token);
  socket.on("connect", () => {
    setConn(t("conn.online"), "ok");
    updateBanner();
    if (state.started && !finished && !$("#exam").hidden) join();
  });
  socket.on("disconnect", (reason) => {
    setConn(t("conn.offline"), "bad");
    if (outbox) outbox.joined = false;
    updateBanner();
    // The server ended the connection (e.g. a node going down): the client does not retry
    // on its own in that case, so ask again; Nginx sends us to a live node.
    if (reason === "io server disconnect" && !finished) setTimeout(() => socket.connect(), 1000 + Math.random() * 2000);
  });
  socket.on("connect_error", (err) => {
    const code = err.data?.code;
    if (["invalid_token", "token_expired", "wrong_role", "unauthorized"].includes(code)) {
      fatal(t(code === "token_expired" ? "fatal.invite_expired" : "fatal.invite_invalid"));
      setConn(t("conn.not_connected"), "bad");
    } else setConn(t("conn.offline"), "bad");
  });
  socket.on("deadline", setClock);
  socket.on("control", (msg) => {
    const actions = {
      warn: () => addMessage("warning", msg.text || t("msg.default_warning")),
      message: () => addMessage("message", msg.text || ""),
      pause: () => addMessage("info", t("msg.paused")),
      resume: () => addMessage("info", t("msg.resumed")),
      extend: () => addMessage("info", t("msg.extended", { count: msg.minutes })),
      terminate: () => {},
      accommodation: () => {
        showAccommodations(msg);
        addMessage("info", accommodationSentence(msg) || t("window.accommodation_removed"));
      },
      window: () => addMessage("info", hardCloseSentence(msg) || t("window.no_hard_close")),
    };
    actions[msg.action]?.();
    setClock(msg);
  });
  socket.on("announce", (msg) => addMessage("announce", msg.text, msg.by));
  // The browser knows it lost the network long before a Socket.IO ping times out (tens of
  // seconds): drop the transport at once, so the page says "offline" and answers queue in the
  // outbox; Socket.IO's reconnection (with back-off) brings it back, and online asks at once.
  window.addEventListener("offline", () => {
    if (socket.connected) socket.io.engine?.close();
    updateBanner();
  });
  window.addEventListener("online", () => {
    if (!socket.connected) socket.connect();
    updateBanner();
  });
}

function wireExamControls() {
  $("#submit").addEventListener("click", submitExam);
  $("#hand-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    handRaised = !handRaised;
    const ack = await call(socket, "hand", { raised: handRaised, text: $("#hand-text").value.trim() });
    if (!ack.ok) {
      handRaised = !handRaised;
      addMessage("info", t("hand.failed"));
    }
    $("#hand").textContent = t(handRaised ? "hand.lower" : "hand.raise");
    $("#hand").setAttribute("aria-pressed", String(handRaised));
    if (handRaised) addMessage("info", t("hand.raised"));
  });
  $("#fullscreen-again").addEventListener("click", () => document.documentElement.requestFullscreen?.().catch(() => {}));
  document.addEventListener("fullscreenchange", () => {
    show($("#fullscreen-note"), state.started && !finished && !document.fullscreenElement && document.fullscreenEnabled);
  });
}

async function main() {
  if (!token || !claims) {
    fatal(t("fatal.no_token"));
    return;
  }
  if (claims.exp && claims.exp * 1000 < Date.now()) {
    fatal(t("fatal.invite_expired"));
    return;
  }
  config = { ...config, ...(await appConfig()) };
  if (await needsMicrophonePage()) return;
  wireSocket();
  wireExamControls();
  if (state.started) await enterExam();
  else if (state.consented) await showCheck();
  else await showConsent();
}

main();
