// The student page: consent → system check → exam → done.
import { $, api, appConfig, call, claimsOf, confirmDialog, connect, el, formatDuration, show, takeToken } from "./common.js";
import { runChecks, openCamera } from "./check.js";
import { Outbox } from "./outbox.js";
import { QuestionList } from "./questions.js";
import { watchLockdown } from "./lockdown.js";
import { AnalysisLink } from "./analysis.js";
import { SnapshotLink } from "./snapshots.js";
import { LiveView } from "./liveview.js";

const token = takeToken("proctor.student.token");
const claims = token ? claimsOf(token) : null;
const stateKey = `proctor.exam.${claims?.sub}.${claims?.room}`;
const state = JSON.parse(sessionStorage.getItem(stateKey) || "{}");
const saveState = () => sessionStorage.setItem(stateKey, JSON.stringify(state));

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
    banner.textContent = waiting
      ? `You are offline. ${waiting} ${waiting === 1 ? "message is" : "messages are"} waiting on this device and will be sent when the connection returns. Keep this page open.`
      : "You are offline. Reconnecting… Keep this page open; your work is kept on this device.";
    show(banner);
  } else {
    show(banner, false);
  }
}

function addMessage(kind, text, by) {
  const list = $("#messages");
  list.querySelector(".empty")?.remove();
  const labels = { warning: "Warning", message: "Message", announce: "Announcement", info: "Notice" };
  list.prepend(el("li", { class: `msg ${kind}` },
    el("strong", {}, labels[kind] || "Notice"), by ? ` from ${by}` : "", ": ", text,
    el("span", { class: "muted small" }, ` ${new Date().toLocaleTimeString()}`)));
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
  if (c.status === "submitted" || c.status === "terminated") finish(c.status);
  tick();
}

function tick() {
  if (!clock) return;
  const left = clock.paused ? clock.remaining : clock.remaining - (performance.now() - clock.at) / 1000;
  const value = $("#timer-value");
  value.textContent = clock.paused ? `${formatDuration(left)} (paused)` : formatDuration(left);
  $("#timer").classList.toggle("low", left < 300 && !clock.paused);
  if (left <= 0 && !finished && !clock.paused) value.textContent = "Time is up — submitting…";
}
setInterval(tick, 250);

// ---- outbox results → save indicators ----
function onResult(message, ack) {
  if (message.event === "join") return;
  if (message.event !== "answer") return;
  const qid = message.payload.question_id;
  if (outbox.pending("answer", (p) => p.question_id === qid).length) return; // a newer one is on its way
  if (ack.ok) questions.setStatus(qid, "saved");
  else if (ack.error?.code === "paused") questions.setStatus(qid, "paused");
  else questions.setStatus(qid, "failed", ack.error?.message || ack.error?.code);
  updateProgress();
}

function updateProgress() {
  if (questions) $("#progress-text").textContent = `Answered ${questions.answeredCount} of ${questions.questions.length}.`;
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
    const retry = ack.error?.retry_after;
    if (retry) {
      setConn("Waiting for a seat…", "warn");
      setTimeout(join, retry * 1000);
    } else fatal(`Could not join the exam: ${ack.error?.message || ack.error?.code}`);
    return;
  }
  const attemptId = ack.attempt.attempt_id;
  $("#exam-title").textContent = ack.exam.title;
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
        ? new SnapshotLink(socket, () => stream, ack.analysis.sample_interval_seconds)
        : new AnalysisLink(socket, () => stream, config.ice_servers);
    analysis.start();
  }
}

// ---- screens ----
function showMicrophoneConsent() {
  for (const id of ["consent-mic-h", "consent-mic", "consent-mic-what"]) show($(`#${id}`), listening);
  show($("#consent-no-mic"), !listening);
}

// A speaking exam's page must come from /exam/?mic=<exam>: only that address gets a
// Permissions-Policy that lets the page ask for the microphone (server/http/pages.py). The
// token is already in sessionStorage (takeToken), so the reload keeps it out of the URL.
async function needsMicrophonePage() {
  let exam;
  try {
    exam = await api(token, "GET", `/api/exams/${encodeURIComponent(claims.exam)}`);
  } catch {
    return false; // the consent screen reports an invalid link
  }
  listening = Boolean(exam.speaking_enabled);
  if (listening && new URLSearchParams(location.search).get("mic") !== claims.exam) {
    location.replace(`/exam/?mic=${encodeURIComponent(claims.exam)}`);
    return true;
  }
  return false;
}

async function showConsent() {
  screen("consent");
  showMicrophoneConsent();
  try {
    const exam = await api(token, "GET", `/api/exams/${encodeURIComponent(claims.exam)}`);
    $("#exam-title").textContent = exam.title;
    $("#consent-exam").textContent =
      `${exam.title}: ${exam.question_count ?? exam.questions.length} questions, ${exam.duration_minutes} minutes.` +
      (claims.name ? ` Signed in as ${claims.name}.` : "");
    const days = exam.evidence_retention_days ?? exam.rules?.evidence_retention_days;
    if (days) {
      $("#consent-retention").textContent =
        `Evidence images are kept as set by your institution, at most ${days} days, then deleted automatically.`;
    }
  } catch (err) {
    if (err.status === 401) fatal("Your invite link is not valid or has expired. Ask your institution for a new one.");
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
    const timer = setTimeout(() => reject(new Error("The exam server could not be reached")), 10000);
    socket.once("connect", () => { clearTimeout(timer); resolve(); });
    socket.once("connect_error", (err) => {
      if (err.data?.code) { clearTimeout(timer); reject(new Error(err.data.message || err.data.code)); }
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

function finish(status) {
  if (finished) return;
  finished = true;
  lockdown?.stop();
  liveView?.closeAll();
  analysis?.stop();
  for (const track of stream?.getTracks() || []) track.stop();
  if (document.fullscreenElement) document.exitFullscreen().catch(() => {});
  show($("#timer"), false);
  show($("#offline"), false);
  $("#done-text").textContent = status === "terminated"
    ? "Your exam was ended by your teacher. Your answers up to now are saved."
    : "Your answers are saved. You can close this page.";
  screen("done");
}

async function submitExam() {
  questions.flushAll();
  const total = questions.questions.length;
  const ok = await confirmDialog(
    `Submit the exam now? You answered ${questions.answeredCount} of ${total} questions. You cannot change your answers afterwards.`,
    "Submit");
  if (!ok) return;
  $("#submit").disabled = true;
  const drained = await outbox.drain(8000);
  if (!drained && !(await confirmDialog(
    `${outbox.size} answers are not saved on the server yet. Submit anyway?`, "Submit anyway"))) {
    $("#submit").disabled = false;
    return;
  }
  const ack = await call(socket, "submit", {});
  if (ack.ok) finish(ack.attempt.status);
  else {
    $("#submit").disabled = false;
    addMessage("info", `Could not submit: ${ack.error?.message || ack.error?.code}. Try again.`);
  }
}

function wireSocket() {
  socket = connect("/student", token);
  socket.on("connect", () => {
    setConn("Online", "ok");
    updateBanner();
    if (state.started && !finished && !$("#exam").hidden) join();
  });
  socket.on("disconnect", (reason) => {
    setConn("Offline — reconnecting…", "bad");
    if (outbox) outbox.joined = false;
    updateBanner();
    // The server ended the connection (e.g. a node going down): the client does not retry
    // on its own in that case, so ask again; Nginx sends us to a live node.
    if (reason === "io server disconnect" && !finished) setTimeout(() => socket.connect(), 1000 + Math.random() * 2000);
  });
  socket.on("connect_error", (err) => {
    const code = err.data?.code;
    if (["invalid_token", "token_expired", "wrong_role", "unauthorized"].includes(code)) {
      fatal(code === "token_expired"
        ? "Your invite link has expired. Ask your institution for a new one."
        : "This invite link is not valid. Open the exact link you were sent.");
      setConn("Not connected", "bad");
    } else setConn("Offline — reconnecting…", "bad");
  });
  socket.on("deadline", setClock);
  socket.on("control", (msg) => {
    const actions = {
      warn: () => addMessage("warning", msg.text || "Please follow the exam rules."),
      message: () => addMessage("message", msg.text || ""),
      pause: () => addMessage("info", "The exam is paused."),
      resume: () => addMessage("info", "The exam has resumed."),
      extend: () => addMessage("info", `Your time was extended by ${msg.minutes} minute${msg.minutes === 1 ? "" : "s"}.`),
      terminate: () => {},
    };
    actions[msg.action]?.();
    setClock(msg);
  });
  socket.on("announce", (msg) => addMessage("announce", msg.text, msg.by));
  window.addEventListener("online", updateBanner);
  window.addEventListener("offline", updateBanner);
}

function wireExamControls() {
  $("#submit").addEventListener("click", submitExam);
  $("#hand-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    handRaised = !handRaised;
    const ack = await call(socket, "hand", { raised: handRaised, text: $("#hand-text").value.trim() });
    if (!ack.ok) {
      handRaised = !handRaised;
      addMessage("info", "Your hand could not be raised; try again.");
    }
    $("#hand").textContent = handRaised ? "Lower hand" : "Raise hand";
    $("#hand").setAttribute("aria-pressed", String(handRaised));
    if (handRaised) addMessage("info", "Your teacher has been told you raised your hand.");
  });
  $("#fullscreen-again").addEventListener("click", () => document.documentElement.requestFullscreen?.().catch(() => {}));
  document.addEventListener("fullscreenchange", () => {
    show($("#fullscreen-note"), state.started && !finished && !document.fullscreenElement && document.fullscreenEnabled);
  });
}

async function main() {
  if (!token || !claims) {
    fatal("Open this page from the invite link you were sent (it contains your personal access key).");
    return;
  }
  if (claims.exp && claims.exp * 1000 < Date.now()) {
    fatal("Your invite link has expired. Ask your institution for a new one.");
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
