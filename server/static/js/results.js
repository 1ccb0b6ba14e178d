// A room's results: the attempts (grade, time taken, decided flags, verdict) with the CSV, and
// per question how many answered, the mean score, difficulty and discrimination, drawn as a bar
// chart (SVG, drawn here) a teacher reads at a glance, with the same numbers in a table.
import { $, api, download, el, formatDuration, show, showLogin, teacherCredential } from "./common.js";
import { formatNumber, lang, t, tNodes, typed } from "./i18n.js";

const TOKEN_KEY = "proctor.teacher.token";
const token = await teacherCredential(TOKEN_KEY);
const roomId = new URLSearchParams(location.search).get("room");
const NS = "http://www.w3.org/2000/svg";

const fatal = (text) => { $("#fatal").textContent = text; show($("#fatal")); };
// A fixed number of decimals in the reader's locale (0.25, 4.0).
const fmt = (v, digits = 2) => (v === null || v === undefined ? "—"
  : new Intl.NumberFormat(lang, { minimumFractionDigits: digits, maximumFractionDigits: digits }).format(Number(v)));
const VERDICTS = { cleared: "verdict.cleared", follow_up: "verdict.follow_up", misconduct: "verdict.misconduct" };
const verdictText = (a) => (a.verdict && VERDICTS[a.verdict] ? t(VERDICTS[a.verdict]) : a.verdict_label || "—");
const KINDS = { single: "editor.qkind.single", multiple: "editor.qkind.multiple", numeric: "editor.qkind.numeric", short: "editor.qkind.short", essay: "editor.qkind.essay", text: "editor.qkind.essay" };
const kindText = (kind) => (KINDS[kind] ? t(KINDS[kind]) : kind);

function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) if (v !== undefined && v !== null) node.setAttribute(k, String(v));
  for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return node;
}

// Two bars per question on a -1..1 scale (difficulty is 0..1): a zero line, grid lines every 0.25.
export function chart(questions) {
  const rowH = 34, left = 170, right = 40, width = 900, top = 28;
  const height = top + questions.length * rowH + 16;
  const zero = left + (width - left - right) / 2;
  const scale = (width - left - right) / 2;
  const root = svg("svg", { class: "chart", viewBox: `0 0 ${width} ${height}`, role: "img", direction: "ltr",
    "aria-label": t("results.chart_label", { count: questions.length }) });
  const grid = svg("g", { class: "grid" });
  for (let v = -1; v <= 1.0001; v += 0.25) {
    const gx = zero + v * scale;
    grid.append(svg("line", { x1: gx, x2: gx, y1: top - 6, y2: height - 10 }));
    grid.append(svg("text", { x: gx, y: top - 10, "text-anchor": "middle", direction: "ltr" }, fmt(v)));
  }
  root.append(grid);
  questions.forEach((q, i) => {
    const y = top + i * rowH;
    root.append(svg("text", { x: 6, y: y + 16 }, t("results.chart_row", { id: q.question_id, kind: kindText(q.kind) })));
    const bar = (value, cls, dy, name) => {
      if (value === null || value === undefined) {
        root.append(svg("text", { x: zero + 4, y: y + dy + 9, class: "muted" }, t("results.not_enough_data", { name })));
        return;
      }
      const x = value >= 0 ? zero : zero + value * scale;
      root.append(svg("rect", { class: `bar ${cls}${value < 0 ? " negative" : ""}`, x, y: y + dy, width: Math.max(1, Math.abs(value) * scale), height: 11,
        "data-question": q.question_id, "data-value": value }));
      // A negative bar grows to the left; its label goes right of the zero line, clear of the names.
      root.append(svg("text", { x: value >= 0 ? zero + value * scale + 4 : zero + 4, y: y + dy + 10 }, t("results.bar_value", { name, value: fmt(value) })));
    };
    bar(q.difficulty, "difficulty", 2, t("results.difficulty_word"));
    bar(q.discrimination, "discrimination", 16, t("results.discrimination_word"));
  });
  return root;
}

async function showResults() {
  const data = await api(token, "GET", `/api/rooms/${encodeURIComponent(roomId)}/results`);
  document.title = t("results.page_title", { room: data.room.name });
  $("#title").replaceChildren(...tNodes("results.title", { room: typed(data.room.name), exam: typed(data.exam.title) }));
  const graded = data.attempts.filter((a) => a.grade_final).length;
  $("#results-count").textContent = `${t("results.students", { count: data.attempts.length })} · ${t("results.graded_in_full", { count: graded })}`;
  $("#results-rows").replaceChildren(...data.attempts.map((a) => el("tr", {},
    el("td", {}, typed(a.student_name || a.student_id)), el("td", {}, t(`status.${a.status}`)),
    el("td", {}, a.grade === null ? t("results.not_graded")
      : t(a.grade_final ? "results.grade_of" : "results.grade_of_not_final", { grade: fmt(a.grade, 1), max: fmt(a.grade_max, 1) })),
    el("td", { class: "num" }, a.time_taken_seconds === null ? "—" : formatDuration(a.time_taken_seconds)),
    el("td", { class: "num" }, formatNumber(a.confirmed_flags)), el("td", { class: "num" }, formatNumber(a.unreviewed_flags)),
    el("td", {}, verdictText(a)),
    el("td", {}, el("a", { href: `/teacher/review.html?${new URLSearchParams({ room: roomId, attempt: a.id })}` },
      ...tNodes("results.review_named", { name: typed(a.student_name || a.student_id) }))))));
  if (!data.attempts.length) $("#results-rows").append(el("tr", {}, el("td", { colspan: 8, class: "muted" }, t("results.no_attempts"))));
}

async function showStats() {
  const data = await api(token, "GET", `/api/rooms/${encodeURIComponent(roomId)}/statistics`);
  $("#stats-count").textContent = `${t("results.questions_count", { count: data.questions.length })} · ${t("results.ended_count", { count: data.ended })}`;
  $("#stats-chart").replaceChildren(chart(data.questions));
  $("#stats-rows").replaceChildren(...data.questions.map((q) => el("tr", { "data-question": q.question_id },
    el("th", { scope: "row" }, `${q.question_id}: `, typed(q.text.slice(0, 80))), el("td", {}, kindText(q.kind)),
    el("td", {}, t("results.students", { count: q.answered })),
    el("td", { class: "num" }, q.mean_score === null ? "—" : `${fmt(q.mean_score)} / ${fmt(q.max_points, 1)}`),
    el("td", { class: "num" }, fmt(q.difficulty)), el("td", { class: "num" }, fmt(q.discrimination)))));
}

async function main() {
  if (!token) {
    showLogin(TOKEN_KEY);
    return;
  }
  if (!roomId) {
    fatal(t("results.open_from_a_room"));
    return;
  }
  $("#dash-link").href = `/teacher/?room=${encodeURIComponent(roomId)}`;
  $("#review-link").href = `/teacher/review.html?room=${encodeURIComponent(roomId)}`;
  show($("#results"));
  show($("#stats"));
  $("#results-csv").addEventListener("click", async () => {
    try {
      await download(token, `/api/rooms/${encodeURIComponent(roomId)}/report.csv`, `room-${roomId}.csv`);
      $("#results-csv-status").textContent = t("results.downloaded");
    } catch (err) {
      $("#results-csv-status").textContent = t("results.download_failed", { reason: err.message });
    }
  });
  try {
    await Promise.all([showResults(), showStats()]);
  } catch (err) {
    fatal(t("results.cannot_read", { reason: err.message }));
  }
}

main();
