// Import questions (/teacher/import.html): check a Moodle XML, GIFT or QTI file with a dry
// run (the report table lists every item), then create the exam from the same file. The file
// goes as the raw request body (POST /api/exams/import?format=…), so a zip is not re-encoded.
import { $, el, show, showLogin, signOut, teacherCredential } from "./common.js";
import { errorText, formatNumber, t, tNodes, typed } from "./i18n.js";

const TOKEN_KEY = "proctor.teacher.token";
const token = await teacherCredential(TOKEN_KEY);
const RESULTS = { imported: "import.result_imported", changed: "import.result_changed", refused: "import.result_refused" };
const KINDS = {
  single: "import.kind_single", multiple: "import.kind_multiple", numeric: "import.kind_numeric", short: "import.kind_short",
  essay: "import.kind_essay",
};

function status(message, error = false) {
  const box = $("#import-status");
  box.textContent = message;
  box.className = error ? "notice error" : "muted";
}

function guessFormat(file) {
  const name = file.name.toLowerCase();
  if (name.endsWith(".zip")) return "qti";
  if (name.endsWith(".xml")) return "moodle";
  if (name.endsWith(".txt") || name.endsWith(".gift")) return "gift";
  return null;
}

async function send(dryRun) {
  const file = $("#import-file").files[0];
  if (!file) {
    status(t("import.choose_a_file"), true);
    $("#import-file").focus();
    return null;
  }
  const params = new URLSearchParams({ format: $("#import-format").value, dry_run: String(dryRun) });
  const title = $("#import-title").value.trim();
  if (title) params.set("title", title);
  params.set("duration_minutes", $("#import-duration").value || "60");
  const session = token && typeof token === "object";
  const headers = session ? { "X-CSRF-Token": token.csrf } : { Authorization: `Bearer ${token}` };
  headers["Content-Type"] = "application/octet-stream";
  const resp = await fetch(`/api/exams/import?${params}`, { method: "POST", headers, credentials: "same-origin", body: file });
  const data = await resp.json().catch(() => null);
  if (!resp.ok) {
    const error = data?.error;
    // An `invalid` answer's fields name what was wrong with the file; other codes' are in the text.
    const fields = error?.fields && error.code === "invalid" ? Object.entries(error.fields).map(([k, v]) => `${k}: ${v}`).join("; ") : "";
    const reason = error ? errorText(error) : `HTTP ${resp.status}`;
    status(t("import.not_imported", { reason: `${reason}${fields ? ` (${fields})` : ""}` }), true);
    return null;
  }
  return data;
}

function showReport(report) {
  const { imported, changed, refused } = report.counts;
  $("#report-summary").textContent = t("import.summary", { count: imported + changed + refused, imported, changed, refused });
  // The importer's notes are the server's words about the file (English), kept as they are.
  $("#report-notes").replaceChildren(...report.notes.map((note) => el("li", { translate: "no", lang: "en" }, note)));
  const rows = report.items.map((item) => el("tr", { class: `result-${item.status}`, "data-status": item.status },
    el("td", { class: "num" }, formatNumber(item.number)),
    el("td", {}, typed(item.name)),
    el("td", {}, el("strong", {}, RESULTS[item.status] ? t(RESULTS[item.status]) : item.status)),
    el("td", {}, item.kind ? (KINDS[item.kind] ? t(KINDS[item.kind]) : item.kind) : "—"),
    el("td", {}, item.question_id ? el("code", {}, item.question_id) : "—"),
    el("td", {}, item.notes.length
      ? el("ul", { class: "notes-list", translate: "no", lang: "en" }, ...item.notes.map((n) => el("li", {}, n))) : "—")));
  $("#report-table tbody").replaceChildren(...rows);
  show($("#report"));
  $("#report").scrollIntoView({ block: "start" });
}

async function check(e) {
  e.preventDefault();
  status(t("import.checking"));
  $("#import-create").disabled = true;
  const data = await send(true);
  if (!data) return;
  showReport(data.report);
  const usable = data.questions.length;
  $("#import-create").disabled = usable === 0;
  status(usable ? t("import.can_be_imported", { count: usable }) : t("import.none_importable"), usable === 0);
}

async function create() {
  status(t("import.creating"));
  const data = await send(false);
  if (!data) return;
  showReport(data.report);
  $("#import-create").disabled = true;
  const box = $("#import-status");
  box.className = "notice";
  box.replaceChildren(...tNodes("import.created", { title: typed(data.exam.title), count: data.exam.questions.length,
    id: el("code", { id: "created-exam-id" }, data.exam.id) }), " ",
    el("a", { href: "/teacher/editor.html" }, t("import.open_editor")));
}

if (!token) {
  showLogin(TOKEN_KEY);
} else {
  show($("#importer"));
  const logout = $("#logout");
  show(logout);
  logout.addEventListener("click", () => signOut(TOKEN_KEY, token));
  $("#import-file").addEventListener("change", () => {
    const file = $("#import-file").files[0];
    const format = file && guessFormat(file);
    if (format) $("#import-format").value = format;
    $("#import-create").disabled = true;
  });
  $("#import-format").addEventListener("change", () => { $("#import-create").disabled = true; });
  $("#import-form").addEventListener("submit", check);
  $("#import-create").addEventListener("click", create);
}
