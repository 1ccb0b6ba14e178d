// A room's results: the attempts (grade, time taken, decided flags, verdict) with the CSV, and
// per question how many answered, the mean score, difficulty and discrimination, drawn as a bar
// chart (SVG, drawn here) a teacher reads at a glance, with the same numbers in a table.
import { $, api, download, el, formatDuration, show, showLogin, teacherCredential } from "./common.js";
import { count } from "./counts.js";

const TOKEN_KEY = "proctor.teacher.token";
const token = await teacherCredential(TOKEN_KEY);
const roomId = new URLSearchParams(location.search).get("room");
const NS = "http://www.w3.org/2000/svg";

const fatal = (text) => { $("#fatal").textContent = text; show($("#fatal")); };
const fmt = (v, digits = 2) => (v === null || v === undefined ? "—" : Number(v).toFixed(digits));

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
  const root = svg("svg", { class: "chart", viewBox: `0 0 ${width} ${height}`, role: "img",
    "aria-label": `Difficulty and discrimination of ${count(questions.length, "question")}; the table below gives the numbers` });
  const grid = svg("g", { class: "grid" });
  for (let v = -1; v <= 1.0001; v += 0.25) {
    const gx = zero + v * scale;
    grid.append(svg("line", { x1: gx, x2: gx, y1: top - 6, y2: height - 10 }));
    grid.append(svg("text", { x: gx, y: top - 10, "text-anchor": "middle" }, v.toFixed(2)));
  }
  root.append(grid);
  questions.forEach((q, i) => {
    const y = top + i * rowH;
    root.append(svg("text", { x: 6, y: y + 16 }, `${q.question_id} (${q.kind})`));
    const bar = (value, cls, dy, name) => {
      if (value === null || value === undefined) {
        root.append(svg("text", { x: zero + 4, y: y + dy + 9, class: "muted" }, `${name}: not enough data`));
        return;
      }
      const x = value >= 0 ? zero : zero + value * scale;
      root.append(svg("rect", { class: `bar ${cls}${value < 0 ? " negative" : ""}`, x, y: y + dy, width: Math.max(1, Math.abs(value) * scale), height: 11,
        "data-question": q.question_id, "data-value": value }));
      // A negative bar grows to the left; its label goes right of the zero line, clear of the names.
      root.append(svg("text", { x: value >= 0 ? zero + value * scale + 4 : zero + 4, y: y + dy + 10 }, `${name} ${fmt(value)}`));
    };
    bar(q.difficulty, "difficulty", 2, "difficulty");
    bar(q.discrimination, "discrimination", 16, "discrimination");
  });
  return root;
}

async function showResults() {
  const data = await api(token, "GET", `/api/rooms/${encodeURIComponent(roomId)}/results`);
  document.title = `Results — ${data.room.name}`;
  $("#title").textContent = `Results — ${data.room.name} (${data.exam.title})`;
  const graded = data.attempts.filter((a) => a.grade_final).length;
  $("#results-count").textContent = `${count(data.attempts.length, "student")} · ${graded} graded in full`;
  $("#results-rows").replaceChildren(...data.attempts.map((a) => el("tr", {},
    el("td", {}, a.student_name || a.student_id), el("td", {}, a.status),
    el("td", {}, a.grade === null ? "not graded" : `${fmt(a.grade, 1)} / ${fmt(a.grade_max, 1)}${a.grade_final ? "" : " (not final)"}`),
    el("td", {}, a.time_taken_seconds === null ? "—" : formatDuration(a.time_taken_seconds)),
    el("td", {}, String(a.confirmed_flags)), el("td", {}, String(a.unreviewed_flags)),
    el("td", {}, a.verdict_label || "—"),
    el("td", {}, el("a", { href: `/teacher/review.html?${new URLSearchParams({ room: roomId, attempt: a.id })}` },
      `Review ${a.student_name || a.student_id}`)))));
  if (!data.attempts.length) $("#results-rows").append(el("tr", {}, el("td", { colspan: 8, class: "muted" }, "No attempts yet.")));
}

async function showStats() {
  const data = await api(token, "GET", `/api/rooms/${encodeURIComponent(roomId)}/statistics`);
  $("#stats-count").textContent = `${count(data.questions.length, "question")} · ${count(data.ended, "ended attempt")}`;
  $("#stats-chart").replaceChildren(chart(data.questions));
  $("#stats-rows").replaceChildren(...data.questions.map((q) => el("tr", { "data-question": q.question_id },
    el("th", { scope: "row" }, `${q.question_id}: ${q.text.slice(0, 80)}`), el("td", {}, q.kind),
    el("td", {}, count(q.answered, "student")),
    el("td", {}, q.mean_score === null ? "—" : `${fmt(q.mean_score)} / ${fmt(q.max_points, 1)}`),
    el("td", {}, fmt(q.difficulty)), el("td", {}, fmt(q.discrimination)))));
}

async function main() {
  if (!token) {
    showLogin(TOKEN_KEY);
    return;
  }
  if (!roomId) {
    fatal("Open this page from a room (results.html?room=…).");
    return;
  }
  $("#dash-link").href = `/teacher/?room=${encodeURIComponent(roomId)}`;
  $("#review-link").href = `/teacher/review.html?room=${encodeURIComponent(roomId)}`;
  show($("#results"));
  show($("#stats"));
  $("#results-csv").addEventListener("click", async () => {
    try {
      await download(token, `/api/rooms/${encodeURIComponent(roomId)}/report.csv`, `room-${roomId}.csv`);
      $("#results-csv-status").textContent = "Downloaded.";
    } catch (err) {
      $("#results-csv-status").textContent = `Could not download: ${err.message}`;
    }
  });
  try {
    await Promise.all([showResults(), showStats()]);
  } catch (err) {
    fatal(`Cannot read the results: ${err.message}`);
  }
}

main();
