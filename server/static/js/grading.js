// The grading page: one attempt at a time (every question, its key, the student's answer as
// text, the grade so far), or one question across every submitted attempt of a room. Points and
// a comment per answer; the attempt's grade becomes final once every question has a grade.
import { $, api, el, show, showLogin, teacherCredential } from "./common.js";
import { formatNumber, t, tNodes, typed } from "./i18n.js";

const TOKEN_KEY = "proctor.teacher.token";
const token = await teacherCredential(TOKEN_KEY);
const statusText = (status) => t(`status.${status}`);

function result(node, text, error = false) {
  node.textContent = text;
  node.className = !text ? "" : error ? "notice error" : "notice";
}

function errorText(err) {
  const fields = err.fields && err.code === "invalid" ? ` (${Object.entries(err.fields).map(([k, v]) => `${k}: ${v}`).join("; ")})` : "";
  return `${err.message}${fields}`;
}

// Points in the reader's locale, at most two decimals (3.5, 0.25).
const points = (n) => formatNumber(Math.round(n * 100) / 100);
const who = (attempt) => typed(attempt.student_name || attempt.student_id);
const whoText = (attempt) => attempt.student_name || attempt.student_id;

function totalText(attempt) {
  if (attempt.grade === null || attempt.grade === undefined) return tNodes("grading.not_graded_total", { name: who(attempt) });
  const key = attempt.grade_final ? "grading.total_final" : "grading.total_waiting";
  return tNodes(key, { name: who(attempt), grade: points(attempt.grade), max: points(attempt.grade_max) });
}

function keyText(q) {
  const key = q.key;
  const list = (items) => new Intl.ListFormat(document.documentElement.lang, { type: "unit" }).format(items.map(String));
  if (q.kind === "single" || q.kind === "multiple") {
    if (!key.correct) return [t("grading.no_key")];
    const right = typed(list(key.correct.map((i) => q.options[i])));
    if (q.kind === "single") return tNodes("grading.right", { right });
    return tNodes(key.scoring === "partial" ? "grading.right_partial" : "grading.right_all_or_nothing", { right });
  }
  if (q.kind === "numeric") {
    return key.answer === null ? [t("grading.no_key")] : tNodes("grading.right_numeric", { answer: points(key.answer), tolerance: points(key.tolerance) });
  }
  if (q.kind === "short") return key.accepted.length ? tNodes("grading.accepted", { accepted: typed(list(key.accepted)) }) : [t("grading.no_key")];
  return [t("grading.by_hand")];
}

function answerText(entry) {
  const value = entry.answer_text;
  if (value === null || value === undefined || value === "" || (Array.isArray(value) && !value.length)) return t("grading.no_answer");
  return typed(Array.isArray(value) ? value.join("; ") : String(value), "span");
}

function gradedText(grade) {
  if (!grade) return [t("grading.not_graded")];
  const params = { grade: points(grade.points), max: points(grade.max_points) };
  return grade.auto ? tNodes("grading.graded_auto", params) : tNodes("grading.graded_by", { ...params, who: typed(grade.graded_by) });
}

// One answer: the question, its options (text, the right ones marked), the student's answer,
// and a labelled points + comment form.
function answerCard(entry, attempt, heading, onSaved) {
  const id = `g-${attempt.id}-${entry.id}`.replace(/[^A-Za-z0-9_-]/g, "");
  const grade = entry.grade;
  const input = el("input", {
    id: `${id}-points`, type: "number", min: 0, max: entry.points, step: "0.25", required: true,
    value: grade ? String(grade.points) : "",
  });
  const comment = el("textarea", { id: `${id}-comment`, rows: 2, maxlength: 5000, dir: "auto" });
  comment.value = grade ? grade.comment : "";
  const status = el("p", { role: "status", class: "notice" }, ...gradedText(grade));
  const form = el("form", { class: "stack grade-form", "aria-label": t("grading.grade_form", { name: whoText(attempt), id: entry.id }) },
    el("div", { class: "row" },
      el("label", { for: input.id }, t("grading.points_range", { max: points(entry.points) })), input),
    el("label", { for: comment.id }, t("grading.comment")), comment,
    el("div", { class: "row" }, el("button", { type: "submit" }, t("grading.save_grade"))), status);
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    try {
      const saved = await api(token, "PUT", `/api/attempts/${attempt.id}/grades/${encodeURIComponent(entry.id)}`,
        { points: Number(input.value), comment: comment.value });
      const params = { count: saved.points, points: points(saved.points), grade: points(saved.grade), max: points(saved.grade_max) };
      result(status, t(saved.final ? "grading.saved_final" : "grading.saved", params));
      onSaved?.(saved);
    } catch (err) {
      result(status, t("grading.not_saved", { reason: errorText(err) }), true);
    }
  });
  const options = entry.options.length
    ? el("ul", { class: "options" }, entry.options.map((text, i) =>
      el("li", {}, typed(text), entry.key.correct?.includes(i) ? ` ${t("grading.right_mark")}` : "")))
    : null;
  return el("article", { class: "card grade-card", "aria-labelledby": `${id}-h` },
    el("h3", { id: `${id}-h` }, ...heading),
    el("p", { dir: "auto", translate: "no" }, entry.text),
    options,
    el("p", { class: "hint" }, ...keyText(entry)),
    el("p", {}, el("strong", {}, t("grading.answer_label")), " ", el("span", { class: "answer" }, answerText(entry))),
    form);
}

async function openAttempt(attemptId) {
  const out = $("#pick-result");
  try {
    const sheet = await api(token, "GET", `/api/attempts/${encodeURIComponent(attemptId)}/grading`);
    $("#sheet-h").replaceChildren(...tNodes("grading.sheet_attempt_h",
      { title: typed(sheet.exam.title), version: sheet.exam.version, name: who(sheet.attempt) }));
    $("#sheet-total").replaceChildren(...totalText(sheet.attempt));
    $("#sheet").replaceChildren(...sheet.questions.map((q, i) => answerCard(q, sheet.attempt,
      [t("grading.question_h", { n: i + 1, id: q.id, count: q.points, points: points(q.points) })],
      (saved) => { $("#sheet-total").replaceChildren(...totalText({ ...sheet.attempt, grade: saved.grade, grade_max: saved.grade_max, grade_final: saved.final })); })));
    show($("#sheet-card"));
    result(out, "");
    history.replaceState(null, "", `?attempt=${encodeURIComponent(attemptId)}`);
  } catch (err) {
    result(out, t("grading.not_opened", { reason: errorText(err) }), true);
  }
}

async function openQuestion(roomId, questionId) {
  const out = $("#pick-result");
  try {
    const sheet = await api(token, "GET", `/api/rooms/${encodeURIComponent(roomId)}/questions/${encodeURIComponent(questionId)}/answers`);
    $("#sheet-h").replaceChildren(...tNodes("grading.sheet_question_h", { id: sheet.question.id, text: typed(sheet.question.text) }));
    $("#sheet-total").textContent = t("grading.answered_by", { count: sheet.answers.length });
    $("#sheet").replaceChildren(...sheet.answers.map((entry) => answerCard(entry, entry.attempt, [who(entry.attempt)])));
    show($("#sheet-card"));
    result(out, "");
    history.replaceState(null, "", `?room=${encodeURIComponent(roomId)}&question=${encodeURIComponent(questionId)}`);
  } catch (err) {
    result(out, t("grading.not_opened", { reason: errorText(err) }), true);
  }
}

async function openRoom(roomId) {
  try {
    const data = await api(token, "GET", `/api/rooms/${encodeURIComponent(roomId)}/attempts`);
    const closed = data.attempts.filter((a) => a.status === "submitted" || a.status === "terminated");
    $("#attempts tbody").replaceChildren(...closed.map((a) => el("tr", {},
      el("td", {}, who(a)),
      el("td", {}, statusText(a.status)),
      el("td", {}, el("button", { type: "button", class: "small secondary", "aria-label": t("grading.grade_named", { name: whoText(a) }),
        onclick: () => { $("#pick-attempt").value = a.id; openAttempt(a.id); } }, t("grading.grade"))))));
    show($("#room-card"));
  } catch (err) {
    result($("#pick-result"), t("grading.room_not_opened", { reason: errorText(err) }), true);
  }
}

async function main() {
  if (!token) {
    showLogin(TOKEN_KEY);
    return;
  }
  show($("#pick"));
  $("#pick-attempt-form").addEventListener("submit", (e) => { e.preventDefault(); openAttempt($("#pick-attempt").value.trim()); });
  $("#pick-question-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const room = $("#pick-room").value.trim();
    openRoom(room);
    openQuestion(room, $("#pick-question").value.trim());
  });
  const params = new URLSearchParams(location.search);
  if (params.get("room")) {
    $("#pick-room").value = params.get("room");
    await openRoom(params.get("room"));
  }
  if (params.get("question") && params.get("room")) {
    $("#pick-question").value = params.get("question");
    await openQuestion(params.get("room"), params.get("question"));
  } else if (params.get("attempt")) {
    $("#pick-attempt").value = params.get("attempt");
    await openAttempt(params.get("attempt"));
  }
}

main();
