// Renders the exam's questions and reports every change; shows a save indicator per answer.
// The server sends this attempt's questions in its order, options as displayed (a shuffled
// exam): the page sends back the indexes it displayed and the server maps them (docs/exams.md).
import { t } from "./i18n.js";
import { el } from "./common.js";

// Kinds answered by typing: essay ("text" before step 12), short answer, numeric.
const TYPED = new Set(["text", "essay", "short", "numeric"]);

const STATES = ["saving", "saved", "waiting", "failed", "paused"]; // i18n keys save.<state>

export class QuestionList {
  constructor(form, questions, onAnswer) {
    this.form = form;
    this.questions = questions;
    this.onAnswer = onAnswer; // (questionId, value)
    this.status = new Map();
    this.timers = new Map();
    this.answered = new Set();
    form.replaceChildren(...questions.map((q, i) => this.#render(q, i)));
    form.addEventListener("submit", (e) => e.preventDefault());
  }

  #render(q, index) {
    const name = `q-${q.id}`;
    const status = el("span", { class: "save", id: `${name}-status`, role: "status", "aria-live": "polite" });
    this.status.set(q.id, status);
    const legend = el("legend", {}, el("span", { class: "qnum" }, t("question.number", { n: index + 1 })), " ", el("bdi", { translate: "no" }, q.text));
    const fieldset = el("fieldset", { class: "question", id: name, "data-qid": q.id, "aria-describedby": `${name}-status` }, legend);
    if (TYPED.has(q.kind)) {
      const label = t("question.answer_to", { n: index + 1 });
      const field = q.kind === "essay" || q.kind === "text"
        ? el("textarea", { id: `${name}-text`, name, rows: 4, maxlength: q.max_length || 2000, "aria-label": label, dir: "auto" })
        : el("input", {
          id: `${name}-text`, name, type: "text", autocomplete: "off", "aria-label": label, dir: "auto",
          maxlength: q.kind === "numeric" ? 64 : (q.max_length || 2000),
          // A decimal comma is a number too (the server reads "0,33").
          ...(q.kind === "numeric" ? { inputmode: "decimal", "data-kind": "numeric" } : { "data-kind": "short" }),
        });
      field.addEventListener("input", () => this.#debounced(q.id, () => field.value));
      field.addEventListener("blur", () => this.#flushDebounced(q.id));
      fieldset.append(field);
      if (q.kind === "numeric") fieldset.append(el("p", { class: "hint" }, t("question.numeric_hint")));
    } else {
      const type = q.kind === "single" ? "radio" : "checkbox";
      const options = q.options.map((text, i) => {
        const input = el("input", { type, name, value: String(i), id: `${name}-o${i}` });
        input.addEventListener("change", () => this.#changed(q));
        return el("label", { class: "option", for: `${name}-o${i}` }, input, " ", el("bdi", { translate: "no" }, text));
      });
      fieldset.append(el("div", { class: "options" }, options));
    }
    fieldset.append(el("div", { class: "save-row" }, status));
    return fieldset;
  }

  #valueOf(q) {
    const inputs = [...this.form.querySelectorAll(`[name="q-${CSS.escape(q.id)}"]`)];
    if (TYPED.has(q.kind)) return inputs[0].value;
    const checked = inputs.filter((i) => i.checked).map((i) => Number(i.value));
    return q.kind === "single" ? checked[0] : checked;
  }

  #changed(q) {
    const value = this.#valueOf(q);
    if (value === undefined) return;
    this.answered.add(q.id);
    this.onAnswer(q.id, value);
  }

  // Text answers are saved 800 ms after the last keystroke (and on leaving the field).
  #debounced(qid, read) {
    clearTimeout(this.timers.get(qid)?.timer);
    const timer = setTimeout(() => this.#flushDebounced(qid), 800);
    this.timers.set(qid, { timer, read });
    this.setStatus(qid, "saving");
  }

  #flushDebounced(qid) {
    const entry = this.timers.get(qid);
    if (!entry) return;
    clearTimeout(entry.timer);
    this.timers.delete(qid);
    this.answered.add(qid);
    this.onAnswer(qid, entry.read());
  }

  flushAll() {
    for (const qid of [...this.timers.keys()]) this.#flushDebounced(qid);
  }

  setValue(qid, value) {
    const q = this.questions.find((x) => x.id === qid);
    if (!q) return;
    const inputs = [...this.form.querySelectorAll(`[name="q-${CSS.escape(qid)}"]`)];
    if (TYPED.has(q.kind)) inputs[0].value = typeof value === "string" || typeof value === "number" ? String(value) : "";
    else {
      const chosen = new Set(Array.isArray(value) ? value : [value]);
      for (const input of inputs) input.checked = chosen.has(Number(input.value));
    }
    this.answered.add(qid);
  }

  setStatus(qid, state, detail = "") {
    const node = this.status.get(qid);
    if (!node) return;
    const label = t(`save.${STATES.includes(state) ? state : "failed"}`);
    node.textContent = detail ? `${label}: ${detail}` : label;
    node.dataset.state = state;
  }

  setDisabled(disabled) {
    for (const input of this.form.querySelectorAll("input, textarea")) input.disabled = disabled;
  }

  get answeredCount() {
    return this.answered.size;
  }
}
