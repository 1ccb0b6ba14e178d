// The review queue: flagged attempts across every room I may review, worst first, paginated;
// each row opens the attempt's review page.
import { $, api, el, formatTime, show, showLogin, teacherCredential } from "./common.js";
import { count } from "./counts.js";

const TOKEN_KEY = "proctor.teacher.token";
const token = await teacherCredential(TOKEN_KEY);
const PER_PAGE = 25;
let page = 1;

const fatal = (text) => { $("#fatal").textContent = text; show($("#fatal")); };

function row(a) {
  const name = a.student_name || a.student_id;
  const href = `/teacher/review.html?${new URLSearchParams({ room: a.room_id, attempt: a.attempt_id })}`;
  return el("tr", { "data-attempt": a.attempt_id },
    el("td", {}, name), el("td", {}, `${a.room_name} — ${a.exam_title}`), el("td", {}, a.status),
    el("td", {}, String(a.suspicion_score)), el("td", {}, String(a.flags.unreviewed)),
    el("td", {}, String(a.flags.confirmed)), el("td", {}, String(a.flags.dismissed)),
    el("td", {}, formatTime(a.last_violation_at)), el("td", {}, a.verdict_label || "—"),
    el("td", {}, el("a", { href }, `Review ${name}`)));
}

async function load() {
  const q = new URLSearchParams({ page: String(page), per_page: String(PER_PAGE) });
  if ($("#queue-room").value) q.set("room", $("#queue-room").value);
  if ($("#queue-unreviewed").checked) q.set("unreviewed", "true");
  try {
    const data = await api(token, "GET", `/api/review/queue?${q}`);
    $("#queue-rows").replaceChildren(...data.attempts.map(row));
    if (!data.attempts.length) $("#queue-rows").append(el("tr", {}, el("td", { colspan: 10, class: "muted" }, "Nothing to review.")));
    $("#queue-count").textContent = `${count(data.total, "flagged attempt")} to look at`;
    $("#queue-page").textContent = `Page ${data.page} of ${data.pages}`;
    $("#queue-prev").disabled = data.page <= 1;
    $("#queue-next").disabled = data.page >= data.pages;
  } catch (err) {
    fatal(`Cannot read the review queue: ${err.message}`);
  }
}

async function main() {
  if (!token) {
    showLogin(TOKEN_KEY);
    return;
  }
  show($("#queue"));
  try {
    const { rooms } = await api(token, "GET", "/api/me/rooms");
    $("#queue-room").append(...rooms.map((r) => el("option", { value: r.id }, `${r.name} — ${r.exam_title}`)));
  } catch (err) {
    fatal(`Cannot list my rooms: ${err.message}`);
  }
  const params = new URLSearchParams(location.search);
  if (params.get("room")) $("#queue-room").value = params.get("room");
  $("#queue-filters").addEventListener("change", () => { page = 1; load(); });
  $("#queue-filters").addEventListener("submit", (e) => e.preventDefault());
  $("#queue-prev").addEventListener("click", () => { page = Math.max(1, page - 1); load(); });
  $("#queue-next").addEventListener("click", () => { page += 1; load(); });
  await load();
}

main();
