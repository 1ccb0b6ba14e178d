import { formatDate, formatNumber, has, t, tNodes, typed } from "./i18n.js";
// After the exam: a room's attempts with the results download, and one attempt's review: the
// visual timeline, every flag with the detector's explanation and its evidence, a decision
// (confirm or dismiss, with a note) per flag, and the attempt's verdict.
import { $, api, appConfig, download, el, formatTime, kindLabel, show, showLogin, teacherCredential } from "./common.js";
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
const VERDICTS = { cleared: "verdict.cleared", follow_up: "verdict.follow_up", misconduct: "verdict.misconduct" };
const verdictText = (id, label) => (id && VERDICTS[id] ? t(VERDICTS[id]) : label || "—");
const when = (iso) => formatDate(iso);

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
    $("#room-counts").textContent = `${t("review.attempts_count", { count: attempts.length })} · ${t("review.flags_to_decide_count", { count: undecided })}`;
    $("#attempts").replaceChildren(...attempts.map((a) => el("tr", { class: a.id === attemptId ? "current" : "" },
      el("td", {}, typed(a.student_name || a.student_id)), el("td", {}, statusText(a.status)), el("td", { class: "num" }, formatNumber(a.answered)),
      el("td", { class: "num" }, formatNumber(a.flags.unreviewed)), el("td", { class: "num" }, formatNumber(a.flags.confirmed)),
      el("td", {}, verdictText(a.verdict, a.verdict_label)),
      el("td", {}, a.submitted_at ? `${formatTime(a.submitted_at)} (${endText(a.end_reason)})` : "—"),
      el("td", {}, el("a", { href: link(a.id) }, ...tNodes("review.review_named", { name: typed(a.student_name || a.student_id) }))))));
    if (!attempts.length) $("#attempts").append(el("tr", {}, el("td", { colspan: 8, class: "muted" }, t("review.no_attempts"))));
  } catch (err) {
    fatal(t("review.cannot_list", { reason: err.message }));
  }
}

function flagCard(entry, onDecided) {
  const noteId = `note-${entry.id}`;
  const decidedParams = { who: typed(entry.reviewed_by || "?"), at: formatTime(entry.reviewed_at) };
  const state = el("p", { class: "state" }, ...(entry.review
    ? [...tNodes(entry.review === "confirmed" ? "review.confirmed_by" : "review.dismissed_by", decidedParams),
      ...(entry.review_note ? [": ", typed(`“${entry.review_note}”`)] : [])]
    : [t("review.not_yet_decided")]));
  const note = el("textarea", { id: noteId, maxlength: 1000, value: entry.review_note || "", dir: "auto" });
  const message = el("span", { role: "status" });
  const decide = (decision) => async () => {
    message.textContent = t("review.saving");
    try {
      await postReview(token)(entry.id, decision, note.value.trim());
      message.textContent = decision === "confirmed" ? t("review.confirmed_done") : t("review.dismissed_done");
      await onDecided(entry.id);
    } catch (err) {
      message.textContent = t("review.could_not_save", { reason: err.message });
    }
  };
  const card = el("article", { class: `flag-card ${entry.review || "unreviewed"}`, id: `flag-${entry.id}`, tabindex: -1,
    "aria-labelledby": `flag-h-${entry.id}`, "data-id": entry.id },
    el("h4", { id: `flag-h-${entry.id}` }, `${formatTime(entry.at)} — ${kindLabel(entry.kind)}`,
      el("span", { class: "muted small" }, ` ${t("review.flag_source", { source: t(`source.${entry.source === "server" ? "server" : "client"}`), weight: entry.severity })}`)),
    // The detector's own words (the server's explanation), as the live feed shows them.
    el("p", { class: "explanation", translate: "no", lang: "en" }, entry.explanation),
    entry.evidence_id ? evidenceNode(token, entry.evidence_id) : null,
    state,
    el("label", { for: noteId }, t("review.note_on_flag", { kind: kindLabel(entry.kind), at: formatTime(entry.at) })), note,
    el("div", { class: "row" },
      el("button", { type: "button", class: "small", onclick: decide("confirmed") }, t("review.confirm_flag")),
      el("button", { type: "button", class: "small secondary", onclick: decide("dismissed") }, t("review.dismiss_flag")),
      message));
  return card;
}

async function loadAttempt(focusFlag = null) {
  const data = await api(token, "GET", `/api/attempts/${encodeURIComponent(attemptId)}/timeline`);
  const a = data.attempt;
  const name = a.student_name || a.student_id;
  $("#attempt-h").replaceChildren(...tNodes("review.attempt_of", { name: typed(name) }));
  document.title = t("review.title_of", { name });
  $("#attempt-summary").replaceChildren(typed(a.exam_title), " · ",
    `${statusText(a.status)}${a.end_reason ? ` (${endText(a.end_reason)})` : ""}`,
    ` · ${t("review.answered_n", { count: a.answered })}`,
    ` · ${t("review.flags_summary", { count: a.violations, unreviewed: a.flags.unreviewed, confirmed: a.flags.confirmed, dismissed: a.flags.dismissed })}`,
    ` · ${t("review.started_at", { at: when(a.started_at) })}`);
  $("#attempt-verdict").replaceChildren(...(a.verdict
    ? [...tNodes("review.verdict_by", { verdict: verdictText(a.verdict, a.verdict_label), who: typed(a.verdict_by), at: when(a.verdict_at) }),
      ...(a.verdict_note ? [" — ", typed(`“${a.verdict_note}”`)] : [])]
    : [t("review.no_verdict")]));
  const flags = data.entries.filter((e) => e.type === "violation");
  $("#flags-count").textContent = flags.length ? t("review.flags_count", { count: flags.length, unreviewed: a.flags.unreviewed }) : t("review.no_flags");
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
  $("#review-note").textContent = t("review.flags_are_signals");
  $("#verdict-choice").replaceChildren(el("option", { value: "" }, t("review.choose")),
    ...Object.entries(verdictLabels).map(([id, label]) => el("option", { value: id }, verdictText(id, label))));
  $("#verdict-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const verdict = $("#verdict-choice").value;
    $("#verdict-result").textContent = t("review.saving");
    try {
      const given = await api(token, "POST", `/api/attempts/${encodeURIComponent(attemptId)}/verdict`,
        { verdict, note: $("#verdict-note").value.trim() });
      $("#verdict-result").textContent = t("review.verdict_saved", { verdict: verdictText(given.verdict, given.verdict_label) });
      await loadAttempt();
    } catch (err) {
      $("#verdict-result").textContent = t("review.not_saved", { reason: err.message });
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
