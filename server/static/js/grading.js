// The grading page: one attempt at a time (every question, its key, the student's answer as
// text, the grade so far), or one question across every submitted attempt of a room. Points and
// a comment per answer; the attempt's grade becomes final once every question has a grade.
import { $, api, el, show, showLogin, teacherCredential } from "./common.js";

const TOKEN_KEY = "proctor.teacher.token";
const token = await teacherCredential(TOKEN_KEY);

function result(node, text, error = false) {
  node.textContent = text;
  node.className = !text ? "" : error ? "notice error" : "notice";
}

function errorText(err) {
  const fields = err.fields ? ` (${Object.entries(err.fields).map(([k, v]) => `${k}: ${v}`).join("; ")})` : "";
  return `${err.message}${fields}`;
}

function points(n) {
  return Number.isInteger(n) ? String(n) : n.toFixed(2).replace(/0+$/, "");
}

function totalText(attempt) {
  if (attempt.grade === null || attempt.grade === undefined) return `${attempt.student_name || attempt.student_id}: not graded yet.`;
  const state = attempt.grade_final ? "final" : "waiting for a person to grade some answers";
  return `${attempt.student_name || attempt.student_id}: ${points(attempt.grade)} of ${points(attempt.grade_max)} points (${state}).`;
}

function keyText(q) {
  const key = q.key;
  if (q.kind === "single" || q.kind === "multiple") {
    if (!key.correct) return "No key: graded by hand.";
    const right = key.correct.map((i) => q.options[i]).join("; ");
    return `Right: ${right}${q.kind === "multiple" ? ` (${key.scoring === "partial" ? "partial credit" : "all or nothing"})` : ""}`;
  }
  if (q.kind === "numeric") return key.answer === null ? "No key: graded by hand." : `Right: ${key.answer} ± ${key.tolerance}`;
  if (q.kind === "short") return key.accepted.length ? `Accepted: ${key.accepted.join("; ")}` : "No key: graded by hand.";
  return "Graded by hand.";
}

function answerText(entry) {
  const value = entry.answer_text;
  if (value === null || value === undefined || value === "" || (Array.isArray(value) && !value.length)) return "(no answer)";
  return Array.isArray(value) ? value.join("; ") : String(value);
}

// One answer: the question, its options (text, the right ones marked), the student's answer,
// and a labelled points + comment form.
function answerCard(entry, attempt, heading, onSaved) {
  const id = `g-${attempt.id}-${entry.id}`.replace(/[^A-Za-z0-9_-]/g, "");
  const who = attempt.student_name || attempt.student_id;
  const grade = entry.grade;
  const input = el("input", {
    id: `${id}-points`, type: "number", min: 0, max: entry.points, step: "0.25", required: true,
    value: grade ? String(grade.points) : "",
  });
  const comment = el("textarea", { id: `${id}-comment`, rows: 2, maxlength: 5000 });
  comment.value = grade ? grade.comment : "";
  const status = el("p", { role: "status", class: "notice" },
    grade ? `${grade.auto ? "Graded automatically" : `Graded by ${grade.graded_by}`}: ${points(grade.points)} of ${points(grade.max_points)}.`
      : "Not graded yet.");
  const form = el("form", { class: "stack grade-form", "aria-label": `Grade ${who}, question ${entry.id}` },
    el("div", { class: "row" },
      el("label", { for: input.id }, `Points (0 to ${points(entry.points)})`), input),
    el("label", { for: comment.id }, "Comment"), comment,
    el("div", { class: "row" }, el("button", { type: "submit" }, "Save grade")), status);
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    try {
      const saved = await api(token, "PUT", `/api/attempts/${attempt.id}/grades/${encodeURIComponent(entry.id)}`,
        { points: Number(input.value), comment: comment.value });
      result(status, `Saved: ${points(saved.points)} points. Attempt: ${points(saved.grade)} of ${points(saved.grade_max)}${saved.final ? ", final" : ""}.`);
      onSaved?.(saved);
    } catch (err) {
      result(status, `Not saved: ${errorText(err)}`, true);
    }
  });
  const options = entry.options.length
    ? el("ul", { class: "options" }, entry.options.map((text, i) =>
      el("li", {}, text, entry.key.correct?.includes(i) ? " (right)" : "")))
    : null;
  return el("article", { class: "card grade-card", "aria-labelledby": `${id}-h` },
    el("h3", { id: `${id}-h` }, heading),
    el("p", {}, entry.text),
    options,
    el("p", { class: "hint" }, keyText(entry)),
    el("p", {}, el("strong", {}, "Answer: "), el("span", { class: "answer" }, answerText(entry))),
    form);
}

async function openAttempt(attemptId) {
  const out = $("#pick-result");
  try {
    const sheet = await api(token, "GET", `/api/attempts/${encodeURIComponent(attemptId)}/grading`);
    $("#sheet-h").textContent = `${sheet.exam.title} (version ${sheet.exam.version}): ${sheet.attempt.student_name || sheet.attempt.student_id}`;
    $("#sheet-total").textContent = totalText(sheet.attempt);
    $("#sheet").replaceChildren(...sheet.questions.map((q, i) => answerCard(q, sheet.attempt,
      `Question ${i + 1} (${q.id}), ${points(q.points)} points`,
      (saved) => { $("#sheet-total").textContent = totalText({ ...sheet.attempt, grade: saved.grade, grade_max: saved.grade_max, grade_final: saved.final }); })));
    show($("#sheet-card"));
    result(out, "");
    history.replaceState(null, "", `?attempt=${encodeURIComponent(attemptId)}`);
  } catch (err) {
    result(out, `Not opened: ${errorText(err)}`, true);
  }
}

async function openQuestion(roomId, questionId) {
  const out = $("#pick-result");
  try {
    const sheet = await api(token, "GET", `/api/rooms/${encodeURIComponent(roomId)}/questions/${encodeURIComponent(questionId)}/answers`);
    const n = sheet.answers.length;
    $("#sheet-h").textContent = `Question ${sheet.question.id}: ${sheet.question.text}`;
    $("#sheet-total").textContent = `${n === 1 ? "1 submitted attempt" : `${n} submitted attempts`} answered this question.`;
    $("#sheet").replaceChildren(...sheet.answers.map((entry) => answerCard(entry, entry.attempt,
      `${entry.attempt.student_name || entry.attempt.student_id}`)));
    show($("#sheet-card"));
    result(out, "");
    history.replaceState(null, "", `?room=${encodeURIComponent(roomId)}&question=${encodeURIComponent(questionId)}`);
  } catch (err) {
    result(out, `Not opened: ${errorText(err)}`, true);
  }
}

async function openRoom(roomId) {
  try {
    const data = await api(token, "GET", `/api/rooms/${encodeURIComponent(roomId)}/attempts`);
    const closed = data.attempts.filter((a) => a.status === "submitted" || a.status === "terminated");
    $("#attempts tbody").replaceChildren(...closed.map((a) => el("tr", {},
      el("td", {}, a.student_name || a.student_id),
      el("td", {}, a.status),
      el("td", {}, el("button", { type: "button", class: "small secondary", "aria-label": `Grade ${a.student_name || a.student_id}`,
        onclick: () => { $("#pick-attempt").value = a.id; openAttempt(a.id); } }, "Grade")))));
    show($("#room-card"));
  } catch (err) {
    result($("#pick-result"), `Room not opened: ${errorText(err)}`, true);
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
