// The exam editor: exams listed, created, edited (in place, keys corrected, or as a new version),
// duplicated, archived, deleted; rooms created, renamed, resized, closed; invite links (copy /
// CSV); teacher tokens (admin only). The question form is js/exam-form.js.
import { formatDate, formatNumber, has, t, tNodes, typed } from "./i18n.js";
import {
  $, api, appConfig, claimsOf, confirmDialog, el, kindLabel, saveFile, show, signalKinds, showLogin, teacherCredential,
} from "./common.js";
import { addQuestion, examSpec, fillExam, resetExam } from "./exam-form.js";

const TOKEN_KEY = "proctor.teacher.token";
const token = await teacherCredential(TOKEN_KEY);
const claims = token ? claimsOf(token) : null;
const roleText = (role) => (has(`role.${role}`) ? t(`role.${role}`) : role);
let lastInvites = [];

function result(node, text, error = false) {
  node.textContent = text;
  node.className = !text ? "" : error ? "notice error" : "notice";
}

function errorText(err) {
  // Only an `invalid` answer's fields name bad inputs; other codes' fields are already in the text.
  const fields = err.fields && err.code === "invalid" ? ` (${Object.entries(err.fields).map(([k, v]) => `${k}: ${v}`).join("; ")})` : "";
  return `${err.message}${fields}`;
}

let editing = null; // the exam being edited (as read back), or null when creating
const PAGE = 10;
let listOffset = 0;

function editMode(exam) {
  editing = exam;
  $("#exam-h").replaceChildren(...(exam ? tNodes("editor.edit_exam_h", { title: typed(exam.title) }) : [t("editor.exam_h")]));
  $("#exam-submit").textContent = exam ? t("editor.save_exam") : t("editor.create_exam");
  show($("#exam-new"), Boolean(exam));
  show($("#version-notice"), Boolean(exam));
}

async function versionNotice(exam) {
  const data = await api(token, "GET", `/api/exams/${exam.id}/versions`);
  const mine = data.versions.find((v) => v.id === exam.id);
  const started = mine ? mine.attempts : 0;
  const latest = data.versions[data.versions.length - 1];
  const parts = [t("editor.version_of", { version: exam.version, total: data.versions.length })];
  if (latest.id !== exam.id) parts.push(t("editor.newer_version", { version: latest.version }));
  else if (started) parts.push(t("editor.started_on_version", { count: started, next: exam.version + 1 }), t("editor.keys_only"));
  else parts.push(t("editor.none_started"));
  $("#version-notice").textContent = parts.join(" ");
}

async function openExam(id) {
  const out = $("#exam-result");
  try {
    const exam = await api(token, "GET", `/api/exams/${encodeURIComponent(id)}`);
    fillExam(exam);
    editMode(exam);
    await versionNotice(exam);
    $("#room-exam").value = exam.id;
    await loadRooms(exam.id);
    result(out, "");
    $("#exam-title").focus();
  } catch (err) {
    result(out, t("editor.not_opened", { reason: errorText(err) }), true);
  }
}

async function saveExam(e) {
  e.preventDefault();
  const out = $("#exam-result");
  const spec = examSpec();
  if (!spec.questions.length) return result(out, t("editor.add_a_question"), true);
  if (!editing) {
    try {
      const exam = await api(token, "POST", "/api/exams", spec);
      out.className = "notice";
      out.replaceChildren(...tNodes("editor.exam_created", { title: typed(exam.title), id: exam.id }));
      $("#room-exam").value = exam.id;
      $("#room-name").focus();
      await loadList();
    } catch (err) {
      result(out, t("editor.not_created", { reason: errorText(err) }), true);
    }
    return;
  }
  try {
    const data = await api(token, "PUT", `/api/exams/${editing.id}`, spec);
    const said = {
      unchanged: () => t("editor.saved_unchanged"),
      in_place: () => t("editor.saved_in_place"),
      keys: () => t("editor.saved_keys", { count: data.regraded.length }),
      version: () => t("editor.saved_version", { version: data.exam.version, old: editing.version }),
    }[data.outcome]();
    fillExam(data.exam);
    editMode(data.exam);
    await versionNotice(data.exam);
    $("#room-exam").value = data.exam.id;
    await loadRooms(data.exam.id);
    result(out, t("editor.saved_with_id", { said, id: data.exam.id }));
    await loadList();
  } catch (err) {
    result(out, t("editor.not_saved", { reason: errorText(err) }), true);
  }
}

function newExam() {
  resetExam();
  editMode(null);
  addQuestion("single");
}

// ------------------------------------------------------------------------------ the list

async function loadList() {
  const out = $("#list-result");
  const params = new URLSearchParams({ q: $("#list-q").value.trim(), limit: String(PAGE), offset: String(listOffset) });
  if ($("#list-archived").checked) params.set("archived", "true");
  try {
    const page = await api(token, "GET", `/api/exams?${params}`);
    const body = $("#exam-list tbody");
    body.replaceChildren(...page.exams.map(examRow));
    const pages = Math.max(1, Math.ceil(page.total / PAGE));
    $("#list-page").textContent = t("editor.list_page", { page: Math.floor(listOffset / PAGE) + 1, pages, exams: t("editor.exams_count", { count: page.total }) });
    $("#list-prev").disabled = listOffset === 0;
    $("#list-next").disabled = listOffset + PAGE >= page.total;
    result(out, page.total ? "" : t("editor.no_exam_matches"));
  } catch (err) {
    result(out, t("editor.not_listed", { reason: errorText(err) }), true);
  }
}

function action(key, name, handler) {
  return el("button", { type: "button", class: "small secondary", "aria-label": t(`${key}_named`, { name }), onclick: handler }, t(key));
}

function examRow(exam) {
  const title = exam.archived ? tNodes("editor.archived_title", { title: typed(exam.title) }) : [typed(exam.title)];
  return el("tr", {},
    el("td", {}, ...title),
    el("td", { class: "num" }, formatNumber(exam.version)),
    el("td", { class: "num" }, formatNumber(exam.questions)),
    el("td", { class: "num" }, formatNumber(exam.attempts)),
    el("td", { class: "num" }, formatNumber(exam.rooms)),
    el("td", {}, el("div", { class: "row" },
      action("editor.edit", exam.title, () => openExam(exam.id)),
      action("editor.duplicate", exam.title, () => lifecycle("POST", `/api/exams/${exam.id}/duplicate`, {}, "editor.duplicated")),
      action(exam.archived ? "editor.restore" : "editor.archive", exam.title,
        () => lifecycle("POST", `/api/exams/${exam.id}/archive`, { archived: !exam.archived }, exam.archived ? "editor.restored" : "editor.archived_done")),
      action("editor.delete", exam.title, async () => {
        if (await confirmDialog(t("editor.confirm_delete", { title: exam.title }), t("editor.delete"))) {
          const deleted = await lifecycle("DELETE", `/api/exams/${exam.id}`, undefined, "editor.deleted");
          if (deleted && editing && editing.family_id === exam.family_id) newExam();
        }
      }))));
}

async function lifecycle(method, path, body, done) {
  const out = $("#list-result");
  try {
    const data = await api(token, method, path, body);
    await loadList();
    out.className = "notice";
    out.replaceChildren(...tNodes(done, { title: data.title ? typed(data.title) : t("editor.the_exam") }));
    return true;
  } catch (err) {
    result(out, t("editor.not_done", { reason: errorText(err) }), true);
    return false;
  }
}

// ----------------------------------------------------------------------------- the rooms

async function loadRooms(examId) {
  const out = $("#room-list-result");
  try {
    const data = await api(token, "GET", `/api/exams/${encodeURIComponent(examId)}/rooms`);
    $("#room-list tbody").replaceChildren(...data.rooms.map(roomRow));
    show($("#room-list"), data.rooms.length > 0);
    result(out, "");
  } catch (err) {
    result(out, t("editor.rooms_not_listed", { reason: errorText(err) }), true);
  }
}

function roomRow(room) {
  const name = el("input", { value: room.name, maxlength: 200, dir: "auto", "aria-label": t("editor.room_name_of", { name: room.name }) });
  const seats = el("input", { type: "number", min: 1, max: 1000, value: String(room.seats), "aria-label": t("editor.room_seats_of", { name: room.name }) });
  const closed = el("input", { type: "checkbox", "aria-label": t("editor.room_closed_of", { name: room.name }) });
  closed.checked = room.closed;
  const save = el("button", { type: "button", class: "small" }, t("editor.save_room"));
  save.setAttribute("aria-label", t("editor.save_room_of", { name: room.name }));
  save.addEventListener("click", async () => {
    const out = $("#room-list-result");
    try {
      const changed = await api(token, "PATCH", `/api/rooms/${room.id}`,
        { name: name.value.trim(), seats: Number(seats.value), closed: closed.checked });
      out.className = "notice";
      out.replaceChildren(...tNodes(changed.closed ? "editor.room_saved_closed" : "editor.room_saved", { name: typed(changed.name), count: changed.seats }));
    } catch (err) {
      result(out, t("editor.room_not_saved", { reason: errorText(err) }), true);
    }
  });
  return el("tr", {}, el("td", {}, name), el("td", {}, seats), el("td", {}, closed),
    el("td", { class: "num" }, formatNumber(room.attempts)),
    el("td", {}, el("div", { class: "row" }, save,
      el("a", { href: `/teacher/?room=${encodeURIComponent(room.id)}` }, t("editor.dashboard")), " ",
      el("a", { href: `/teacher/grading.html?room=${encodeURIComponent(room.id)}` }, t("editor.grading_link")))));
}

async function createRoom(e) {
  e.preventDefault();
  const out = $("#room-result");
  try {
    const room = await api(token, "POST", `/api/exams/${encodeURIComponent($("#room-exam").value.trim())}/rooms`,
      { name: $("#room-name").value.trim(), seats: Number($("#room-seats").value) });
    out.className = "notice";
    out.replaceChildren(t("editor.room_created", { name: room.name, id: room.id }), " ",
      el("a", { href: `/teacher/?room=${encodeURIComponent(room.id)}` }, t("editor.open_dashboard")));
    $("#invite-room").value = room.id;
    await loadRooms($("#room-exam").value.trim());
  } catch (err) {
    result(out, t("editor.not_created", { reason: errorText(err) }) + (err.status === 503 ? ` — ${t("editor.try_again")}` : ""), true);
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
  button.textContent = t("editor.copied");
  setTimeout(() => { button.textContent = label; }, 1500);
}

async function createInvites(e) {
  e.preventDefault();
  const out = $("#invite-result");
  const students = parseStudents($("#invite-students").value);
  if (!students.length) return result(out, t("editor.list_a_student"), true);
  try {
    const data = await api(token, "POST", `/api/rooms/${encodeURIComponent($("#invite-room").value.trim())}/invites`,
      { students, ttl_hours: Number($("#invite-ttl").value || 72) });
    lastInvites = data.invites;
    const body = $("#invite-table tbody");
    body.replaceChildren(...data.invites.map((inv) => {
      const input = el("input", { value: inv.url, readonly: true, "aria-label": t("editor.invite_link_for", { name: inv.name || inv.student_id }) });
      const button = el("button", { type: "button", class: "small secondary" }, t("editor.copy_link"));
      button.addEventListener("click", () => copy(input, button));
      return el("tr", {}, el("td", { translate: "no", dir: "auto" }, `${inv.name || ""} (${inv.student_id})`), el("td", { class: "link-cell" }, input), el("td", {}, button));
    }));
    show($("#invite-table"));
    show($("#invite-csv"));
    result(out, t("editor.links_made", { count: data.invites.length, until: formatDate(data.invites[0].expires_at) }));
  } catch (err) {
    result(out, t("editor.not_created", { reason: errorText(err) }), true);
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
    const input = el("input", { value: data.token, readonly: true, size: 60, "aria-label": t("editor.new_token") });
    const button = el("button", { type: "button", class: "small secondary" }, t("editor.copy_token"));
    button.addEventListener("click", () => copy(input, button));
    out.className = "notice";
    out.replaceChildren(t("editor.token_made", { sub: data.sub, role: roleText(data.role), until: formatDate(data.expires_at) }), " ", input, " ", button);
  } catch (err) {
    result(out, t("editor.not_created", { reason: errorText(err) }), true);
  }
}

// One number input per signal kind, labelled, bounded and preset from the server's vocabulary.
function weightInputs(config) {
  const weight = config.weight || { minimum: 0, maximum: 100 };
  return signalKinds().map((kind) => el("label", { title: kind.explanation }, kindLabel(kind.id),
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
  $("#who").replaceChildren(...(claims ? [typed(claims.name || claims.sub), ` (${roleText(claims.role)})`] : [t("editor.static_token")]));
  for (const id of ["#list-card", "#exam-card", "#room-card", "#invite-card"]) show($(id));
  show($("#token-card"), !claims || claims.role === "admin");
  // Opened from the home page's "Editor" link: the exam and room to add rooms or invites to.
  const params = new URLSearchParams(location.search);
  if (params.get("exam")) $("#room-exam").value = params.get("exam");
  if (params.get("room")) $("#invite-room").value = params.get("room");
  $("#weights").replaceChildren(...weightInputs(config));
  for (const button of document.querySelectorAll("[data-add]")) button.addEventListener("click", () => addQuestion(button.dataset.add));
  addQuestion("single");
  $("#exam-form").addEventListener("submit", saveExam);
  $("#exam-new").addEventListener("click", newExam);
  $("#list-form").addEventListener("submit", (e) => { e.preventDefault(); listOffset = 0; loadList(); });
  $("#list-archived").addEventListener("change", () => { listOffset = 0; loadList(); });
  $("#list-prev").addEventListener("click", () => { listOffset = Math.max(0, listOffset - PAGE); loadList(); });
  $("#list-next").addEventListener("click", () => { listOffset += PAGE; loadList(); });
  await loadList();
  if (params.get("edit")) await openExam(params.get("edit"));
  $("#room-form").addEventListener("submit", createRoom);
  $("#invite-form").addEventListener("submit", createInvites);
  $("#invite-csv").addEventListener("click", downloadCsv);
  $("#token-form").addEventListener("submit", createToken);
}

main();
