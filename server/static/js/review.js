// After the exam: a room's attempts with the report download, and one attempt's timeline
// with evidence and (when the server offers it) confirm / dismiss of each flag.
import { $, api, appConfig, download, el, formatTime, show, showLogin, teacherCredential } from "./common.js";
import { postReview, renderTimeline, reviewAvailable } from "./timeline.js";

const TOKEN_KEY = "proctor.teacher.token";
const token = await teacherCredential(TOKEN_KEY);
const params = new URLSearchParams(location.search);
const roomId = params.get("room");
const attemptId = params.get("attempt");

const fatal = (text) => { $("#fatal").textContent = text; show($("#fatal")); };
const link = (attempt) => `?${new URLSearchParams({ ...(roomId ? { room: roomId } : {}), attempt }).toString()}`;

async function showRoom() {
  show($("#room"));
  $("#dash-link").href = `/teacher/?room=${encodeURIComponent(roomId)}`;
  $("#report").addEventListener("click", async () => {
    try {
      await download(token, `/api/rooms/${encodeURIComponent(roomId)}/report.csv`, `room-${roomId}.csv`);
      $("#report-result").textContent = "Downloaded.";
    } catch (err) {
      $("#report-result").textContent = `Could not download: ${err.message}`;
    }
  });
  try {
    const { attempts } = await api(token, "GET", `/api/rooms/${encodeURIComponent(roomId)}/attempts`);
    $("#attempts").replaceChildren(...attempts.map((a) => el("tr", { class: a.id === attemptId ? "current" : "" },
      el("td", {}, a.student_name || a.student_id), el("td", {}, a.status), el("td", {}, String(a.answered)),
      el("td", {}, String(a.violations)), el("td", {}, String(a.score)),
      el("td", {}, a.submitted_at ? `${formatTime(a.submitted_at)} (${a.end_reason || ""})` : "—"),
      el("td", {}, el("a", { href: link(a.id) }, "Timeline")))));
    if (!attempts.length) $("#attempts").append(el("tr", {}, el("td", { colspan: 7, class: "muted" }, "No attempts yet.")));
  } catch (err) {
    fatal(`Cannot list the room's attempts: ${err.message}`);
  }
}

async function showAttempt() {
  show($("#attempt"));
  try {
    const [data, canReview] = await Promise.all([
      api(token, "GET", `/api/attempts/${encodeURIComponent(attemptId)}/timeline`),
      reviewAvailable(),
    ]);
    const a = data.attempt;
    $("#attempt-h").textContent = `Attempt of ${a.student_name || a.student_id}`;
    document.title = `Review — ${a.student_name || a.student_id}`;
    $("#attempt-summary").textContent = `${a.status}${a.end_reason ? ` (${a.end_reason})` : ""} · answered ${a.answered}` +
      ` · ${a.violations} violations · score ${a.score} · started ${new Date(a.started_at).toLocaleString()}`;
    $("#review-note").textContent = canReview
      ? "Confirm or dismiss each flag after looking at its evidence; flags are never decisions on their own."
      : "Flags are signals for a person to review, never decisions on their own.";
    renderTimeline($("#timeline"), data.entries, { token, review: canReview ? postReview(token) : null });
  } catch (err) {
    fatal(`Cannot read this attempt: ${err.message}`);
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
  await appConfig(); // the timeline names each flag by its label
  if (roomId) showRoom();
  if (attemptId) showAttempt();
}

main();
