// The exam editor: exams, rooms, invite links (copy / CSV), teacher tokens (admin only).
import { $, api, appConfig, claimsOf, el, saveFile, show, signalKinds, showLogin, teacherCredential } from "./common.js";
import { readWindow } from "./window-fields.js";

const TOKEN_KEY = "proctor.teacher.token";
const token = await teacherCredential(TOKEN_KEY);
const claims = token ? claimsOf(token) : null;
let questionCount = 0;
let lastInvites = [];

function result(node, text, error = false) {
  node.textContent = text;
  node.className = error ? "notice error" : "notice";
}

function errorText(err) {
  const fields = err.fields ? ` (${Object.entries(err.fields).map(([k, v]) => `${k}: ${v}`).join("; ")})` : "";
  return `${err.message}${fields}`;
}

function addQuestion(kind) {
  questionCount += 1;
  const n = questionCount;
  const box = el("fieldset", { class: "qedit", "data-kind": kind },
    el("legend", {}, `Question ${n} — ${kind === "text" ? "text answer" : `${kind} choice`}`),
    el("label", { for: `qt-${n}` }, "Question text"),
    el("textarea", { id: `qt-${n}`, class: "q-text", rows: 2, required: true, maxlength: 5000 }));
  if (kind !== "text") {
    box.append(el("label", { for: `qo-${n}` }, "Options, one a line (at least two)"),
      el("textarea", { id: `qo-${n}`, class: "q-options", rows: 3, required: true }));
  }
  box.append(el("div", { class: "row" },
    el("label", { for: `qp-${n}` }, "Points"), el("input", { id: `qp-${n}`, class: "q-points", type: "number", min: 0, value: "1", step: "0.5" }),
    el("button", { type: "button", class: "small secondary", onclick: () => box.remove() }, "Remove question")));
  $("#questions").append(box);
  box.querySelector("textarea").focus();
}

function examSpec() {
  const questions = [...document.querySelectorAll("#questions .qedit")].map((box, i) => {
    const kind = box.dataset.kind;
    const q = { id: `q${i + 1}`, kind, text: box.querySelector(".q-text").value.trim(), points: Number(box.querySelector(".q-points").value || 1) };
    if (kind !== "text") q.options = box.querySelector(".q-options").value.split("\n").map((s) => s.trim()).filter(Boolean);
    return q;
  });
  const weights = {};
  for (const input of document.querySelectorAll("#weights input")) weights[input.name] = Number(input.value);
  return {
    title: $("#exam-title").value.trim(),
    duration_minutes: Number($("#exam-duration").value),
    questions,
    rules: {
      weights,
      evidence_retention_days: Number($("#exam-retention").value),
      // speaking needs enabled: the API says so when only the microphone box is ticked.
      analysis: { enabled: $("#exam-analysis").checked, speaking: $("#exam-speaking").checked },
    },
    ...(readWindow("exam-win") ? { schedule: readWindow("exam-win") } : {}), // docs/exams.md
  };
}

async function createExam(e) {
  e.preventDefault();
  const out = $("#exam-result");
  const spec = examSpec();
  if (!spec.questions.length) return result(out, "Add at least one question.", true);
  try {
    const exam = await api(token, "POST", "/api/exams", spec);
    result(out, `Exam created: ${exam.title} — id ${exam.id}`);
    $("#room-exam").value = exam.id;
    $("#room-name").focus();
  } catch (err) {
    result(out, `Not created: ${errorText(err)}`, true);
  }
}

async function createRoom(e) {
  e.preventDefault();
  const out = $("#room-result");
  try {
    const room = await api(token, "POST", `/api/exams/${encodeURIComponent($("#room-exam").value.trim())}/rooms`,
      { name: $("#room-name").value.trim(), seats: Number($("#room-seats").value) });
    out.className = "notice";
    out.replaceChildren(`Room “${room.name}” created — id ${room.id}. `,
      el("a", { href: `/teacher/?room=${encodeURIComponent(room.id)}` }, "Open its dashboard"));
    $("#invite-room").value = room.id;
  } catch (err) {
    result(out, `Not created: ${errorText(err)}${err.status === 503 ? " — try again in a moment." : ""}`, true);
  }
}

function parseStudents(text) {
  return text.split("\n").map((line) => line.trim()).filter(Boolean).map((line) => {
    const [id, ...rest] = line.split(",");
    return { id: id.trim(), name: rest.join(",").trim() };
  });
}

async function copy(input, button) {
  const label = button.dataset.label || (button.dataset.label = button.textContent);
  try {
    await navigator.clipboard.writeText(input.value);
  } catch {
    input.select();
    document.execCommand?.("copy");
  }
  button.textContent = "Copied";
  setTimeout(() => { button.textContent = label; }, 1500);
}

async function createInvites(e) {
  e.preventDefault();
  const out = $("#invite-result");
  const students = parseStudents($("#invite-students").value);
  if (!students.length) return result(out, "List at least one student.", true);
  try {
    const data = await api(token, "POST", `/api/rooms/${encodeURIComponent($("#invite-room").value.trim())}/invites`,
      { students, ttl_hours: Number($("#invite-ttl").value || 72) });
    lastInvites = data.invites;
    const body = $("#invite-table tbody");
    body.replaceChildren(...data.invites.map((inv) => {
      const input = el("input", { value: inv.url, readonly: true, "aria-label": `Invite link for ${inv.name || inv.student_id}` });
      const button = el("button", { type: "button", class: "small secondary" }, "Copy link");
      button.addEventListener("click", () => copy(input, button));
      return el("tr", {}, el("td", {}, `${inv.name || ""} (${inv.student_id})`), el("td", { class: "link-cell" }, input), el("td", {}, button));
    }));
    show($("#invite-table"));
    show($("#invite-csv"));
    result(out, `${data.invites.length} links, valid until ${new Date(data.invites[0].expires_at).toLocaleString()}.`);
  } catch (err) {
    result(out, `Not created: ${errorText(err)}`, true);
  }
}

function csvCell(value) {
  let text = String(value ?? "");
  if (/^[=+\-@]/.test(text)) text = `'${text}`; // a spreadsheet would run it as a formula
  return /[",\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

function downloadCsv() {
  const rows = [["student_id", "name", "url", "expires_at"],
    ...lastInvites.map((i) => [i.student_id, i.name, i.url, i.expires_at])];
  saveFile(rows.map((r) => r.map(csvCell).join(",")).join("\r\n") + "\r\n", `invites-${$("#invite-room").value.trim()}.csv`);
}

async function createToken(e) {
  e.preventDefault();
  const out = $("#token-result");
  const rooms = $("#token-rooms").value.split(",").map((s) => s.trim()).filter(Boolean);
  try {
    const data = await api(token, "POST", "/api/tokens", {
      role: $("#token-role").value, sub: $("#token-sub").value.trim(), name: $("#token-name").value.trim(),
      rooms, ttl_hours: Number($("#token-ttl").value || 12),
    });
    const input = el("input", { value: data.token, readonly: true, size: 60, "aria-label": "New token" });
    const button = el("button", { type: "button", class: "small secondary" }, "Copy token");
    button.addEventListener("click", () => copy(input, button));
    out.className = "notice";
    out.replaceChildren(`Token for ${data.sub} (${data.role}), valid until ${new Date(data.expires_at).toLocaleString()}: `, input, " ", button);
  } catch (err) {
    result(out, `Not created: ${errorText(err)}`, true);
  }
}

// One number input per signal kind, labelled, bounded and preset from the server's vocabulary.
function weightInputs(config) {
  const weight = config.weight || { minimum: 0, maximum: 100 };
  return signalKinds().map((kind) => el("label", { title: kind.explanation }, kind.label,
    el("input", {
      type: "number", name: kind.id, min: weight.minimum, max: weight.maximum, step: "0.5",
      value: String(kind.default_weight),
    })));
}

async function main() {
  if (!token) {
    showLogin(TOKEN_KEY);
    return;
  }
  const config = await appConfig(); // before the forms show: they need the signal kinds
  // A static admin token (PROCTOR_ADMIN_TOKEN) is not a JWT: nothing to read, the server decides.
  $("#who").textContent = claims ? `${claims.name || claims.sub} (${claims.role})` : "signed in with a static token";
  for (const id of ["#exam-card", "#room-card", "#invite-card"]) show($(id));
  show($("#token-card"), !claims || claims.role === "admin");
  // Opened from the home page's "Editor" link: the exam and room to add rooms or invites to.
  const params = new URLSearchParams(location.search);
  if (params.get("exam")) $("#room-exam").value = params.get("exam");
  if (params.get("room")) $("#invite-room").value = params.get("room");
  $("#weights").replaceChildren(...weightInputs(config));
  for (const button of document.querySelectorAll("[data-add]")) button.addEventListener("click", () => addQuestion(button.dataset.add));
  addQuestion("single");
  $("#exam-form").addEventListener("submit", createExam);
  $("#room-form").addEventListener("submit", createRoom);
  $("#invite-form").addEventListener("submit", createInvites);
  $("#invite-csv").addEventListener("click", downloadCsv);
  $("#token-form").addEventListener("submit", createToken);
}

main();
