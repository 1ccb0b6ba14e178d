// The exam form of the editor: questions of every kind with their answer keys, points, order and
// pools; read into the body of POST/PUT /api/exams, and filled from an exam read back.
import { $, el } from "./common.js";
import { t } from "./i18n.js";

// Each question kind's name in the form (editor.qkind.<kind>).
const KIND_KEYS = {
  single: "editor.qkind.single",
  multiple: "editor.qkind.multiple",
  numeric: "editor.qkind.numeric",
  short: "editor.qkind.short",
  essay: "editor.qkind.essay",
};

let counter = 0;
// Each box's question as read back: fields the form does not show (feedback, max_length, …)
// are sent back unchanged, so saving an untouched exam changes nothing (and makes no version).
const originals = new WeakMap();
let keptPoolIds = [];

function nextId() {
  // Ids stay stable across edits and versions (grading by question follows them): a new
  // question takes the first free qN.
  const used = new Set([...document.querySelectorAll("#questions .qedit")].map((b) => b.dataset.qid));
  let n = used.size + 1;
  while (used.has(`q${n}`)) n += 1;
  return `q${n}`;
}

function numbers(text) {
  return text.split(/[,\s]+/).map((s) => s.trim()).filter(Boolean).map(Number);
}

function field(label, id, input) {
  return [el("label", { for: id }, label), input];
}

export function addQuestion(kind, q = null) {
  if (kind === "text") kind = "essay";
  counter += 1;
  const n = counter;
  const qid = q?.id || nextId();
  const box = el("fieldset", { class: "qedit", "data-kind": kind, "data-qid": qid },
    el("legend", {}, t("editor.question_legend", { id: qid, kind: t(KIND_KEYS[kind]) })),
    ...field(t("editor.question_text"), `qt-${n}`, el("textarea", { id: `qt-${n}`, class: "q-text", rows: 2, required: true, maxlength: 5000, dir: "auto" })));
  if (kind === "single" || kind === "multiple") {
    box.append(...field(t("editor.options_one_a_line"), `qo-${n}`,
      el("textarea", { id: `qo-${n}`, class: "q-options", rows: 3, required: true, dir: "auto" })));
    box.append(...field(kind === "single" ? t("editor.correct_option") : t("editor.correct_options"),
      `qc-${n}`, el("input", { id: `qc-${n}`, class: "q-correct", inputmode: "numeric", autocomplete: "off" })));
    if (kind === "multiple") {
      const select = el("select", { id: `qs-${n}`, class: "q-scoring" },
        el("option", { value: "all_or_nothing" }, t("editor.scoring_all_or_nothing")),
        el("option", { value: "partial" }, t("editor.scoring_partial")));
      box.append(...field(t("editor.scoring"), `qs-${n}`, select));
    }
  } else if (kind === "numeric") {
    box.append(el("div", { class: "row" },
      ...field(t("editor.correct_value"), `qa-${n}`, el("input", { id: `qa-${n}`, class: "q-answer", type: "number", step: "any" })),
      ...field(t("editor.tolerance"), `qtol-${n}`, el("input", { id: `qtol-${n}`, class: "q-tolerance", type: "number", min: 0, step: "any", value: "0" }))));
  } else if (kind === "short") {
    box.append(...field(t("editor.accepted_answers"), `qacc-${n}`,
      el("textarea", { id: `qacc-${n}`, class: "q-accepted", rows: 2, dir: "auto" })));
  }
  box.append(el("div", { class: "row" },
    ...field(t("editor.points"), `qp-${n}`, el("input", { id: `qp-${n}`, class: "q-points", type: "number", min: 0, max: 1000, value: "1", step: "0.5" })),
    el("button", { type: "button", class: "small secondary", "aria-label": t("editor.remove_question_of", { id: qid }), onclick: () => box.remove() }, t("editor.remove_question"))));
  $("#questions").append(box);
  if (q) {
    originals.set(box, q);
    fillQuestion(box, q);
  }
  else box.querySelector("textarea").focus();
  return box;
}

function fillQuestion(box, q) {
  box.querySelector(".q-text").value = q.text;
  box.querySelector(".q-points").value = String(q.points ?? 1);
  const options = box.querySelector(".q-options");
  if (options) options.value = (q.options || []).join("\n");
  const correct = box.querySelector(".q-correct");
  if (correct && q.correct) correct.value = q.correct.map((i) => i + 1).join(", ");
  const scoring = box.querySelector(".q-scoring");
  if (scoring) scoring.value = q.scoring || "all_or_nothing";
  const answer = box.querySelector(".q-answer");
  if (answer && q.answer !== null && q.answer !== undefined) answer.value = String(q.answer);
  const tolerance = box.querySelector(".q-tolerance");
  if (tolerance) tolerance.value = String(q.tolerance ?? 0);
  const accepted = box.querySelector(".q-accepted");
  if (accepted) accepted.value = (q.accepted || []).join("\n");
}

function readQuestion(box) {
  const kind = box.dataset.kind;
  const q = { ...(originals.get(box) || {}), id: box.dataset.qid, kind, text: box.querySelector(".q-text").value.trim(),
    points: Number(box.querySelector(".q-points").value || 1) };
  if (kind === "single" || kind === "multiple") {
    q.options = box.querySelector(".q-options").value.split("\n").map((s) => s.trim()).filter(Boolean);
    const correct = numbers(box.querySelector(".q-correct").value);
    // Shown from 1 to people, sent from 0 to the server; none typed: graded by hand.
    if (correct.length) q.correct = correct.map((i) => i - 1);
    else delete q.correct;
    if (kind === "multiple") q.scoring = box.querySelector(".q-scoring").value;
  } else if (kind === "numeric") {
    const answer = box.querySelector(".q-answer").value;
    if (answer !== "") q.answer = Number(answer);
    else delete q.answer;
    q.tolerance = Number(box.querySelector(".q-tolerance").value || 0);
  } else if (kind === "short") {
    q.accepted = box.querySelector(".q-accepted").value.split("\n").map((s) => s.trim()).filter(Boolean);
  }
  return q;
}

function readPools() {
  return $("#exam-pools").value.split("\n").map((s) => s.trim()).filter(Boolean).map((line, i) => {
    const [draw, rest = ""] = line.split(":");
    return { id: keptPoolIds[i] || `pool${i + 1}`, draw: Number(draw), questions: rest.split(",").map((s) => s.trim()).filter(Boolean) };
  });
}

// The rules section of an exam read back is kept as it was, except what the form edits.
let keptRules = {};

export function examSpec() {
  const weights = {};
  for (const input of document.querySelectorAll("#weights input")) {
    // A kind absent from an exam read back weighs 0; leave it absent so an untouched save is unchanged.
    if (keptRules.weights && !(input.name in keptRules.weights) && Number(input.value) === 0) continue;
    weights[input.name] = Number(input.value);
  }
  return {
    title: $("#exam-title").value.trim(),
    duration_minutes: Number($("#exam-duration").value),
    questions: [...document.querySelectorAll("#questions .qedit")].map(readQuestion),
    rules: {
      ...keptRules,
      weights,
      evidence_retention_days: Number($("#exam-retention").value),
      // speaking needs enabled: the API says so when only the microphone box is ticked.
      analysis: { ...(keptRules.analysis || {}), enabled: $("#exam-analysis").checked, speaking: $("#exam-speaking").checked },
    },
    shuffle_questions: $("#exam-shuffle-questions").checked,
    shuffle_options: $("#exam-shuffle-options").checked,
    pools: readPools(),
    ...(keptSchedule ? { schedule: keptSchedule } : {}),
  };
}

let keptSchedule = null;

export function fillExam(exam) {
  $("#exam-title").value = exam.title;
  $("#exam-duration").value = String(exam.duration_minutes);
  $("#exam-retention").value = String(exam.rules.evidence_retention_days);
  $("#exam-analysis").checked = exam.rules.analysis.enabled;
  $("#exam-speaking").checked = exam.rules.analysis.speaking;
  for (const input of document.querySelectorAll("#weights input")) input.value = String(exam.rules.weights[input.name] ?? 0);
  keptRules = exam.rules;
  keptSchedule = exam.schedule || null;
  $("#exam-shuffle-questions").checked = Boolean(exam.shuffle_questions);
  $("#exam-shuffle-options").checked = Boolean(exam.shuffle_options);
  keptPoolIds = (exam.pools || []).map((p) => p.id);
  $("#exam-pools").value = (exam.pools || []).map((p) => `${p.draw}: ${p.questions.join(", ")}`).join("\n");
  $("#questions").replaceChildren();
  for (const q of exam.questions) addQuestion(q.kind, q);
}

export function resetExam() {
  $("#exam-form").reset();
  keptRules = {};
  keptSchedule = null;
  keptPoolIds = [];
  $("#questions").replaceChildren();
}
