// After the exam: a room's attempts with the report download, and one attempt's timeline
// with evidence and (when the server offers it) confirm / dismiss of each flag.
import { formatDate, formatNumber, has, t, tNodes, typed } from "./i18n.js";
import { $, api, appConfig, download, el, formatTime, show, showLogin, teacherCredential } from "./common.js";
import { postReview, renderTimeline, reviewAvailable } from "./timeline.js";

const statusText = (status) => (has(`status.${status}`) ? t(`status.${status}`) : status);
const endText = (reason) => (reason && has(`end.${reason}`) ? t(`end.${reason}`) : reason || "");
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
      $("#report-result").textContent = t("review.downloaded");
    } catch (err) {
      $("#report-result").textContent = t("review.download_failed", { reason: err.message });
    }
  });
  try {
    const { attempts } = await api(token, "GET", `/api/rooms/${encodeURIComponent(roomId)}/attempts`);
    $("#attempts").replaceChildren(...attempts.map((a) => el("tr", { class: a.id === attemptId ? "current" : "" },
      el("td", {}, typed(a.student_name || a.student_id)), el("td", {}, statusText(a.status)), el("td", { class: "num" }, formatNumber(a.answered)),
      el("td", { class: "num" }, formatNumber(a.violations)), el("td", { class: "num" }, formatNumber(a.score)),
      el("td", {}, a.submitted_at ? `${formatTime(a.submitted_at)} (${endText(a.end_reason)})` : "—"),
      el("td", {}, el("a", { href: link(a.id) }, t("review.timeline"))))));
    if (!attempts.length) $("#attempts").append(el("tr", {}, el("td", { colspan: 7, class: "muted" }, t("review.no_attempts"))));
  } catch (err) {
    fatal(t("review.cannot_list", { reason: err.message }));
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
    $("#attempt-h").replaceChildren(...tNodes("review.attempt_of", { name: typed(a.student_name || a.student_id) }));
    document.title = t("review.page_title", { name: a.student_name || a.student_id });
    $("#attempt-summary").textContent = t("review.summary", {
      status: statusText(a.status) + (a.end_reason ? ` (${endText(a.end_reason)})` : ""), answered: a.answered,
      count: a.violations, score: a.score, started: formatDate(a.started_at),
    });
    $("#review-note").textContent = t(canReview ? "review.note_review" : "review.note");
    renderTimeline($("#timeline"), data.entries, { token, review: canReview ? postReview(token) : null });
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
  await appConfig(); // the timeline names each flag by its label
  if (roomId) showRoom();
  if (attemptId) showAttempt();
}

main();
