// The review queue: flagged attempts across every room I may review, worst first, paginated;
// each row opens the attempt's review page.
import { $, api, el, formatTime, show, showLogin, teacherCredential } from "./common.js";
import { formatNumber, t, tNodes, typed } from "./i18n.js";

const TOKEN_KEY = "proctor.teacher.token";
const token = await teacherCredential(TOKEN_KEY);
const PER_PAGE = 25;
let page = 1;

const fatal = (text) => { $("#fatal").textContent = text; show($("#fatal")); };
const VERDICTS = { cleared: "verdict.cleared", follow_up: "verdict.follow_up", misconduct: "verdict.misconduct" };
const verdictText = (a) => (a.verdict && VERDICTS[a.verdict] ? t(VERDICTS[a.verdict]) : a.verdict_label || "—");
const num = (n) => el("td", { class: "num" }, formatNumber(n));

function row(a) {
  const name = a.student_name || a.student_id;
  const href = `/teacher/review.html?${new URLSearchParams({ room: a.room_id, attempt: a.attempt_id })}`;
  return el("tr", { "data-attempt": a.attempt_id },
    el("td", {}, typed(name)), el("td", {}, typed(a.room_name), " — ", typed(a.exam_title)), el("td", {}, t(`status.${a.status}`)),
    num(a.suspicion_score), num(a.flags.unreviewed), num(a.flags.confirmed), num(a.flags.dismissed),
    el("td", { class: "num" }, formatTime(a.last_violation_at)), el("td", {}, verdictText(a)),
    el("td", {}, el("a", { href }, ...tNodes("queue.review_named", { name: typed(name) }))));
}

async function load() {
  const q = new URLSearchParams({ page: String(page), per_page: String(PER_PAGE) });
  if ($("#queue-room").value) q.set("room", $("#queue-room").value);
  if ($("#queue-unreviewed").checked) q.set("unreviewed", "true");
  try {
    const data = await api(token, "GET", `/api/review/queue?${q}`);
    $("#queue-rows").replaceChildren(...data.attempts.map(row));
    if (!data.attempts.length) $("#queue-rows").append(el("tr", {}, el("td", { colspan: 10, class: "muted" }, t("queue.nothing_to_review"))));
    $("#queue-count").textContent = t("queue.count", { count: data.total });
    $("#queue-page").textContent = t("queue.page_of", { page: data.page, pages: data.pages });
    $("#queue-prev").disabled = data.page <= 1;
    $("#queue-next").disabled = data.page >= data.pages;
  } catch (err) {
    fatal(t("queue.cannot_read", { reason: err.message }));
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
    $("#queue-room").append(...rooms.map((r) => el("option", { value: r.id, translate: "no", dir: "auto" }, `${r.name} — ${r.exam_title}`)));
  } catch (err) {
    fatal(t("queue.cannot_list_rooms", { reason: err.message }));
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
