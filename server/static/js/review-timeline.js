// The attempt's visual timeline (review page): the exam's duration on one axis, a lane for the
// answers, one lane per kind of flag, one for network gaps and one for pauses and teacher
// controls. Every marker has a shape (its review state: triangle undecided, square confirmed,
// hollow circle dismissed) and sits in a lane named in text, so nothing is told by colour
// alone; each is focusable and carries a text description; focusing or hovering one shows its
// explanation and evidence thumbnail in the panel under the chart.
import { el, formatTime, kindLabel } from "./common.js";
import { evidenceNode } from "./timeline.js";
import { has, t } from "./i18n.js";

const NS = "http://www.w3.org/2000/svg";
export const GEOMETRY = { width: 1000, left: 160, right: 24, top: 30, lane: 34 };

function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS(NS, tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

// The shape of a marker at (x, y): its review state for flags, its type otherwise.
function shape(kind, x, y) {
  const cls = `shape ${kind}`;
  switch (kind) {
    case "unreviewed": return svg("polygon", { class: cls, points: `${x},${y - 7} ${x + 7},${y + 6} ${x - 7},${y + 6}` });
    case "confirmed": return svg("rect", { class: cls, x: x - 6, y: y - 6, width: 12, height: 12 });
    case "dismissed": return svg("circle", { class: cls, cx: x, cy: y, r: 6 });
    case "control": return svg("polygon", { class: cls, points: `${x},${y - 7} ${x + 7},${y} ${x},${y + 7} ${x - 7},${y}` });
    default: return svg("circle", { class: cls, cx: x, cy: y, r: 5 });
  }
}

export function legend() {
  const item = (kind, text) => el("li", {}, (() => {
    const s = svg("svg", { width: 18, height: 18, viewBox: "0 0 18 18", "aria-hidden": "true", class: "tl-svg" }, shape(kind, 9, 9));
    return s;
  })(), ` ${text}`);
  return el("ul", { class: "tl-legend", "aria-label": t("tl.legend") },
    item("unreviewed", t("tl.legend_unreviewed")), item("confirmed", t("tl.legend_confirmed")),
    item("dismissed", t("tl.legend_dismissed")), item("answer", t("tl.legend_answer")),
    item("control", t("tl.legend_control")),
    el("li", {}, t("tl.legend_band")));
}

const actionText = (action) => (has(`control.${action}`) ? t(`control.${action}`) : action);

function controlText(entry) {
  const p = entry.params || {};
  const extra = p.text ? `: “${p.text}”` : p.minutes ? ` ${t("timeline.by_minutes", { count: p.minutes })}` : "";
  return `${entry.actor} — ${actionText(entry.action)}${extra}`;
}

export function flagDescription(entry) {
  const state = entry.review ? t(`review_state.${entry.review === "confirmed" ? "confirmed" : "dismissed"}`) : t("tl.not_yet_decided");
  return t("tl.flag_label", { at: formatTime(entry.at), kind: kindLabel(entry.kind),
    source: t(`source.${entry.source === "server" ? "server" : "client"}`), explanation: entry.explanation || "", state });
}

// Draw into `holder`; `detail` is the panel that shows the focused marker; `onPick(entry)` runs
// when a flag marker is activated (click, Enter or Space).
export function drawTimeline(holder, detail, attempt, entries, { token, onPick = () => {} } = {}) {
  const start = Date.parse(attempt.started_at);
  const planned = start + (attempt.exam_duration_seconds + (attempt.extension_seconds || 0)) * 1000;
  const ended = attempt.submitted_at ? Date.parse(attempt.submitted_at) : Math.max(Date.now(), planned);
  const last = Math.max(...entries.map((e) => Date.parse(e.at) || start), start);
  const end = Math.max(planned, ended, last, start + 60000);
  const { width, left, right, top, lane } = GEOMETRY;
  const x = (t) => left + Math.min(1, Math.max(0, (t - start) / (end - start))) * (width - left - right);

  const flags = entries.filter((e) => e.type === "violation");
  const kinds = [...new Set(flags.map((e) => e.kind))];
  const lanes = [t("tl.lane_answers"), ...kinds.map((k) => t("tl.lane_flag", { kind: kindLabel(k) })), t("tl.lane_network"), t("tl.lane_controls")];
  const laneY = (i) => top + 22 + i * lane;
  const height = laneY(lanes.length - 1) + lane;
  const chart = svg("svg", {
    // Time runs left to right in every language; labels anchor at their x as drawn.
    class: "tl-svg", viewBox: `0 0 ${width} ${height}`, role: "group", direction: "ltr",
    "aria-label": t("tl.chart_label", { from: formatTime(attempt.started_at), to: formatTime(new Date(end).toISOString()) }),
  });
  // The axis: the exam's whole duration (its planned end or the actual one, whichever is later).
  chart.append(svg("line", {
    class: "axis", x1: left, x2: width - right, y1: top, y2: top,
    "data-start": new Date(start).toISOString(), "data-end": new Date(end).toISOString(),
  }));
  const minutes = (end - start) / 60000;
  const step = [1, 2, 5, 10, 15, 30, 60, 120].find((s) => minutes / s <= 10) || 240;
  for (let m = 0; m <= minutes + 1e-9; m += step) {
    const tx = x(start + m * 60000);
    chart.append(svg("g", { class: "tick", "aria-hidden": "true" },
      svg("line", { x1: tx, x2: tx, y1: top - 4, y2: height - 4 }),
      svg("text", { x: tx, y: top - 8, "text-anchor": "middle" }, t("tl.minutes", { count: m }))));
  }
  lanes.forEach((name, i) => {
    chart.append(svg("text", { class: "lane-label", x: 8, y: laneY(i) + 4 }, name));
    chart.append(svg("line", { class: "lane", x1: left, x2: width - right, y1: laneY(i) + lane / 2, y2: laneY(i) + lane / 2, "aria-hidden": "true" }));
  });

  const show = (text, entry) => {
    detail.replaceChildren(el("p", {}, text));
    if (entry?.evidence_id) detail.append(evidenceNode(token, entry.evidence_id));
  };
  const marker = (cls, at, label, children, entry) => {
    const g = svg("g", {
      class: `marker ${cls}`, tabindex: 0, role: "button", "aria-label": label,
      "data-at": at, "data-type": entry?.type || cls, "data-kind": entry?.kind, "data-id": entry?.id,
    }, svg("title", {}, label), children);
    const pick = () => { show(label, entry); if (entry?.type === "violation") onPick(entry); };
    g.addEventListener("focus", () => show(label, entry));
    g.addEventListener("mouseenter", () => show(label, entry));
    g.addEventListener("click", pick);
    g.addEventListener("keydown", (e) => {
      if (e.key === "Enter" || e.key === " ") { e.preventDefault(); pick(); }
    });
    chart.append(g);
    return g;
  };

  for (const e of entries.filter((e) => e.type === "answer")) {
    const cx = x(Date.parse(e.at));
    marker("answer", e.at, t("tl.answered", { at: formatTime(e.at), question: e.question_id, value: e.answer_text ?? "" }), shape("answer", cx, laneY(0)), e);
  }
  for (const e of flags) {
    const cx = x(Date.parse(e.at));
    const y = laneY(1 + kinds.indexOf(e.kind));
    marker(`flag ${e.review || "unreviewed"}`, e.at, flagDescription(e), shape(e.review || "unreviewed", cx, y), e);
  }
  const netY = laneY(lanes.length - 2);
  for (const e of entries.filter((e) => e.type === "network_gap")) {
    const from = Date.parse(e.details?.from || e.at);
    const to = Date.parse(e.details?.to || e.at);
    const x1 = x(from);
    const w = Math.max(3, x(to) - x1);
    marker("gap", e.details?.from || e.at,
      t("tl.gap", { from: formatTime(e.details?.from || e.at), to: formatTime(e.details?.to || e.at), seconds: Math.round(e.details?.seconds ?? (to - from) / 1000) }),
      svg("rect", { class: "shape gap", x: x1, y: netY - 8, width: w, height: 16 }), e);
  }
  const ctlY = laneY(lanes.length - 1);
  const controls = entries.filter((e) => e.type === "control");
  let pausedAt = null;
  for (const e of controls) {
    if (e.action === "pause") { pausedAt = e.at; continue; }
    if (e.action === "resume" && pausedAt) {
      const x1 = x(Date.parse(pausedAt));
      marker("pause", pausedAt, t("tl.paused", { from: formatTime(pausedAt), to: formatTime(e.at) }),
        svg("rect", { class: "shape pause", x: x1, y: ctlY - 9, width: Math.max(3, x(Date.parse(e.at)) - x1), height: 18 }), e);
      pausedAt = null;
    }
  }
  if (pausedAt) {
    const x1 = x(Date.parse(pausedAt));
    marker("pause", pausedAt, t("tl.paused_open", { from: formatTime(pausedAt) }),
      svg("rect", { class: "shape pause", x: x1, y: ctlY - 9, width: Math.max(3, width - right - x1), height: 18 }), null);
  }
  for (const e of controls.filter((c) => c.action !== "pause" && c.action !== "resume")) {
    const cx = x(Date.parse(e.at));
    marker("control", e.at, `${formatTime(e.at)} — ${controlText(e)}`,
      [shape("control", cx, ctlY), svg("text", { class: "marker-text", x: cx + 9, y: ctlY + 4 }, actionText(e.action))], e);
  }
  holder.replaceChildren(chart);
  show(t("tl.focus_hint"), null);
}
