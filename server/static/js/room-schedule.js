// The room page's "Schedule and accommodations" section: the room's own window (it replaces the
// exam's) and per-student extra time and rule switches (docs/exams.md). REST only:
// /api/rooms/{id}/schedule and /api/rooms/{id}/accommodations[/{student_id}].
import { $, api, el, show, signalKinds } from "./common.js";
import { formatWhen } from "./schedule-words.js";
import { fillWindow, readWindow } from "./window-fields.js";

function describeWindow(w) {
  if (!w) return "no window: students may start at any time";
  const parts = [];
  if (w.opens_at) parts.push(`opens ${formatWhen(w.opens_at)}`);
  if (w.latest_start) parts.push(`last start ${formatWhen(w.latest_start)}`);
  if (w.closes_at) parts.push(`closes ${formatWhen(w.closes_at)}${w.hard_close ? " (hard close)" : ""}`);
  return parts.length ? parts.join(", ") : "no limits";
}

function errorText(err) {
  const fields = err.fields ? ` (${Object.entries(err.fields).map(([k, v]) => `${k}: ${v}`).join("; ")})` : "";
  return `Not saved: ${err.message}${fields}`;
}

function extraText(a, durationSeconds) {
  const seconds = Math.ceil(durationSeconds * a.extra_percent / 100) + a.extra_minutes * 60;
  const parts = [];
  if (a.extra_percent) parts.push(`${a.extra_percent} %`);
  if (a.extra_minutes) parts.push(`${a.extra_minutes} min`);
  if (!parts.length) return "none";
  // A percentage is of this exam's duration: say what it comes to.
  return a.extra_percent ? `${parts.join(" + ")} (${Math.round(seconds / 6) / 10} minutes)` : parts.join("");
}

export class RoomSchedule {
  constructor(token, roomId) {
    this.token = token;
    this.roomId = roomId;
    this.base = `/api/rooms/${encodeURIComponent(roomId)}`;
    this.duration = 0;
  }

  async start() {
    show($("#sitting"));
    this.renderRules();
    $("#window-form").addEventListener("submit", (e) => { e.preventDefault(); this.saveWindow(); });
    $("#win-clear").addEventListener("click", () => this.clearWindow());
    $("#acc-form").addEventListener("submit", (e) => { e.preventDefault(); this.saveAccommodation(); });
    await Promise.all([this.loadWindow(), this.loadAccommodations()]);
  }

  renderRules() {
    const box = $("#acc-rules");
    for (const kind of signalKinds()) {
      box.append(el("label", { class: "check", title: kind.explanation || "" },
        el("input", { type: "checkbox", value: kind.id, name: "rules_off" }), kind.label));
    }
  }

  async loadWindow() {
    try {
      const data = await api(this.token, "GET", `${this.base}/schedule`);
      const own = data.schedule;
      $("#window-state").textContent = own
        ? `This room: ${describeWindow(own)}.`
        : `This room follows the exam's window: ${describeWindow(data.exam_schedule)}.`;
      fillWindow("win", own);
    } catch (err) {
      $("#window-state").textContent = `The window is not available: ${err.message}`;
    }
  }

  async saveWindow() {
    const body = readWindow("win");
    if (!body) return this.clearWindow(); // no limit set: the room follows the exam's window
    try {
      await api(this.token, "PUT", `${this.base}/schedule`, body);
      $("#window-result").textContent = "Saved: the room's window.";
      await this.loadWindow();
    } catch (err) {
      $("#window-result").textContent = errorText(err);
    }
  }

  async clearWindow() {
    try {
      await api(this.token, "DELETE", `${this.base}/schedule`);
      $("#window-result").textContent = "Saved: the room follows the exam's window.";
      await this.loadWindow();
    } catch (err) {
      $("#window-result").textContent = errorText(err);
    }
  }

  async loadAccommodations() {
    const body = $("#acc-table tbody");
    try {
      const data = await api(this.token, "GET", `${this.base}/accommodations`);
      this.duration = data.duration_seconds;
      body.replaceChildren(...data.accommodations.map((a) => this.row(a)));
      if (!data.accommodations.length) {
        body.append(el("tr", {}, el("td", { colspan: "6", class: "muted" }, "No student has an accommodation in this room.")));
      }
    } catch (err) {
      body.replaceChildren(el("tr", {}, el("td", { colspan: "6" }, `Accommodations are not available: ${err.message}`)));
    }
  }

  row(a) {
    const labels = new Map(signalKinds().map((k) => [k.id, k.label]));
    const attempt = a.attempt
      ? `${a.attempt.status}${["active", "paused"].includes(a.attempt.status) ? `, deadline ${formatWhen(a.attempt.deadline)}` : ""}`
      : "not started";
    return el("tr", { "data-student": a.student_id },
      el("th", { scope: "row" }, a.attempt?.student_name ? `${a.attempt.student_name} (${a.student_id})` : a.student_id),
      el("td", {}, extraText(a, this.duration)),
      el("td", {}, a.rules_off.map((id) => labels.get(id) || id).join(", ") || "none"),
      el("td", {}, a.note || ""),
      el("td", {}, attempt),
      el("td", {},
        el("button", { type: "button", class: "small secondary", onclick: () => this.edit(a) }, `Edit ${a.student_id}`), " ",
        el("button", { type: "button", class: "small danger", onclick: () => this.remove(a.student_id) }, `Remove ${a.student_id}`)));
  }

  edit(a) {
    $("#acc-student").value = a.student_id;
    $("#acc-percent").value = a.extra_percent;
    $("#acc-minutes").value = a.extra_minutes;
    $("#acc-note").value = a.note || "";
    for (const box of document.querySelectorAll("#acc-rules input")) box.checked = a.rules_off.includes(box.value);
    $("#acc-student").focus();
  }

  async saveAccommodation() {
    const student = $("#acc-student").value.trim();
    const body = {
      extra_percent: Number($("#acc-percent").value || 0),
      extra_minutes: Number($("#acc-minutes").value || 0),
      rules_off: [...document.querySelectorAll("#acc-rules input:checked")].map((box) => box.value),
      note: $("#acc-note").value.trim(),
    };
    try {
      const saved = await api(this.token, "PUT", `${this.base}/accommodations/${encodeURIComponent(student)}`, body);
      $("#acc-result").textContent = saved.applied_to.length
        ? `Saved for ${student}; their running exam has the new time now.`
        : `Saved for ${student}; it applies when they start.`;
      await this.loadAccommodations();
    } catch (err) {
      $("#acc-result").textContent = errorText(err);
    }
  }

  async remove(student) {
    try {
      await api(this.token, "DELETE", `${this.base}/accommodations/${encodeURIComponent(student)}`);
      $("#acc-result").textContent = `Removed the accommodation of ${student}.`;
      await this.loadAccommodations();
    } catch (err) {
      $("#acc-result").textContent = errorText(err);
    }
  }
}
