import { formatDate, formatNumber, has, t, tNodes, typed } from "./i18n.js";
// After the exam: a room's attempts with the results download, and one attempt's review: the
// visual timeline, every flag with the detector's explanation and its evidence, a decision
// (confirm or dismiss, with a note) per flag, and the attempt's verdict.
import { $, api, appConfig, download, el, formatTime, kindLabel, show, showLogin, teacherCredential } from "./common.js";
import { count } from "./counts.js";
import { drawTimeline, legend } from "./review-timeline.js";
import { evidenceNode, postReview, renderTimeline } from "./timeline.js";

const statusText = (status) => (has(`status.${status}`) ? t(`status.${status}`) : status);
const endText = (reason) => (reason && has(`end.${reason}`) ? t(`end.${reason}`) : reason || "");
const TOKEN_KEY = "proctor.teacher.token";
const token = await teacherCredential(TOKEN_KEY);
const params = new URLSearchParams(location.search);
const roomId = params.get("room");
const attemptId = params.get("attempt");
let verdictLabels = {};

const fatal = (text) => { $("#fatal").textContent = text; show($("#fatal")); };
const link = (attempt) => `?${new URLSearchParams({ ...(roomId ? { room: roomId } : {}), attempt }).toString()}`;

async function showRoom() {
  show($("#room"));
  $("#dash-link").href = `/teacher/?room=${encodeURIComponent(roomId)}`;
  $("#results-link").href = `/teacher/results.html?room=${encodeURIComponent(roomId)}`;
  $("#report").addEventListener("click", async () => {
    try {
      await download(token, `/api/rooms/${encodeURIComponent(roomId)}/report.csv`, `room-${roomId}.csv`);
      $("#report-result").textContent = t("review.downloaded");
    } catch (err) {
      $("#report-result").textContent = t("review.download_failed", { reason: err.message });
    }
  });
  try {
    const { attempts } = await api(token, "GET", `/api/rooms/${encodeURIComponent(roomId)}/attempts`);
    const undecided = attempts.reduce((n, a) => n + a.flags.unreviewed, 0);
    $("#room-counts").textContent = `${count(attempts.length, "attempt")} · ${count(undecided, "flag")} to decide`;
    $("#attempts").replaceChildren(...attempts.map((a) => el("tr", { class: a.id === attemptId ? "current" : "" },
      el("td", {}, a.student_name || a.student_id), el("td", {}, a.status), el("td", {}, String(a.answered)),
      el("td", {}, String(a.flags.unreviewed)), el("td", {}, String(a.flags.confirmed)),
      el("td", {}, a.verdict_label || "—"),
      el("td", {}, a.submitted_at ? `${formatTime(a.submitted_at)} (${a.end_reason || ""})` : "—"),
      el("td", {}, el("a", { href: link(a.id) }, `Review ${a.student_name || a.student_id}`)))));
    if (!attempts.length) $("#attempts").append(el("tr", {}, el("td", { colspan: 8, class: "muted" }, "No attempts yet.")));
  } catch (err) {
    fatal(t("review.cannot_list", { reason: err.message }));
  }
}

function flagCard(entry, onDecided) {
  const noteId = `note-${entry.id}`;
  const state = el("p", { class: "state" }, entry.review
    ? `${entry.review === "confirmed" ? "Confirmed" : "Dismissed"} by ${entry.reviewed_by || "?"} at ${formatTime(entry.reviewed_at)}${entry.review_note ? `: “${entry.review_note}”` : ""}`
    : "Not yet decided: it does not count against the student until confirmed.");
  const note = el("textarea", { id: noteId, maxlength: 1000, value: entry.review_note || "" });
  const message = el("span", { role: "status" });
  const decide = (decision) => async () => {
    message.textContent = "saving…";
    try {
      await postReview(token)(entry.id, decision, note.value.trim());
      message.textContent = decision === "confirmed" ? "Confirmed." : "Dismissed.";
      await onDecided(entry.id);
    } catch (err) {
      message.textContent = `Could not save: ${err.message}`;
    }
  };
  const card = el("article", { class: `flag-card ${entry.review || "unreviewed"}`, id: `flag-${entry.id}`, tabindex: -1,
    "aria-labelledby": `flag-h-${entry.id}`, "data-id": entry.id },
    el("h4", { id: `flag-h-${entry.id}` }, `${formatTime(entry.at)} — ${entry.label || kindLabel(entry.kind)}`,
      el("span", { class: "muted small" }, ` (${entry.source === "server" ? "camera analysis" : "browser"}, signal weight ${entry.severity})`)),
    el("p", { class: "explanation" }, entry.explanation),
    entry.evidence_id ? evidenceNode(token, entry.evidence_id) : null,
    state,
    el("label", { for: noteId }, `Note on this flag (${kindLabel(entry.kind)} at ${formatTime(entry.at)})`), note,
    el("div", { class: "row" },
      el("button", { type: "button", class: "small", onclick: decide("confirmed") }, "Confirm flag"),
      el("button", { type: "button", class: "small secondary", onclick: decide("dismissed") }, "Dismiss flag"),
      message));
  return card;
}

async function loadAttempt(focusFlag = null) {
  const data = await api(token, "GET", `/api/attempts/${encodeURIComponent(attemptId)}/timeline`);
  const a = data.attempt;
  const name = a.student_name || a.student_id;
  $("#attempt-h").textContent = `Attempt of ${name}`;
  document.title = `Review — ${name}`;
  $("#attempt-summary").textContent = `${a.exam_title} · ${a.status}${a.end_reason ? ` (${a.end_reason})` : ""} · answered ${a.answered}` +
    ` · ${count(a.violations, "flag")}: ${a.flags.unreviewed} to decide, ${a.flags.confirmed} confirmed, ${a.flags.dismissed} dismissed` +
    ` · started ${new Date(a.started_at).toLocaleString()}`;
  $("#attempt-verdict").textContent = a.verdict
    ? `Verdict: ${a.verdict_label} (by ${a.verdict_by} at ${new Date(a.verdict_at).toLocaleString()})${a.verdict_note ? ` — “${a.verdict_note}”` : ""}`
    : "No verdict yet.";
  const flags = data.entries.filter((e) => e.type === "violation");
  $("#flags-count").textContent = flags.length ? `${count(flags.length, "flag")}, ${a.flags.unreviewed} to decide.` : "No flags: nothing to decide.";
  const decided = async (id) => loadAttempt(id);
  $("#flags").replaceChildren(...flags.map((f) => flagCard(f, decided)));
  drawTimeline($("#tl-chart"), $("#tl-detail"), a, data.entries, {
    token,
    onPick: (entry) => $(`#flag-${entry.id}`)?.focus(),
  });
  renderTimeline($("#timeline"), data.entries, { token });
  if (a.verdict) {
    $("#verdict-choice").value = a.verdict;
    if (!$("#verdict-note").value) $("#verdict-note").value = a.verdict_note;
  }
  if (focusFlag !== null) $(`#flag-${focusFlag}`)?.focus();
  return flags;
}

async function showAttempt() {
  show($("#attempt"));
  $("#tl-legend").replaceChildren(legend());
  $("#review-note").textContent = "Flags are signals for a person to review, never decisions on their own: look at each one's " +
    "explanation and evidence, confirm or dismiss it with a note, then close the attempt with a verdict.";
  $("#verdict-choice").replaceChildren(el("option", { value: "" }, "Choose…"),
    ...Object.entries(verdictLabels).map(([id, label]) => el("option", { value: id }, label)));
  $("#verdict-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const verdict = $("#verdict-choice").value;
    $("#verdict-result").textContent = "saving…";
    try {
      const given = await api(token, "POST", `/api/attempts/${encodeURIComponent(attemptId)}/verdict`,
        { verdict, note: $("#verdict-note").value.trim() });
      $("#verdict-result").textContent = `Saved: ${given.verdict_label}.`;
      await loadAttempt();
    } catch (err) {
      $("#verdict-result").textContent = `Not saved: ${err.message}`;
    }
  });
  try {
    await loadAttempt();
  } catch (err) {
    fatal(t("review.cannot_read", { reason: err.message }));
  }
}

async function main() {
  if (!token) {
    showLogin(TOKEN_KEY);
    return;
  }
  if (!roomId && !attemptId) {
    show($("#pick"));
    $("#pick-form").addEventListener("submit", (e) => {
      e.preventDefault();
      const q = new URLSearchParams();
      if ($("#pick-room").value.trim()) q.set("room", $("#pick-room").value.trim());
      if ($("#pick-attempt").value.trim()) q.set("attempt", $("#pick-attempt").value.trim());
      location.search = `?${q}`;
    });
    return;
  }
  const config = await appConfig(); // the timeline names each flag by its label
  verdictLabels = Object.fromEntries((config.verdicts || []).map((v) => [v.id, v.label]));
  if (roomId) showRoom();
  if (attemptId) showAttempt();
}

main();
