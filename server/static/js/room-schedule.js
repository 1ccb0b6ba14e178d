// The room page's "Schedule and accommodations" section: the room's own window (it replaces the
// exam's) and per-student extra time and rule switches (docs/exams.md). REST only:
// /api/rooms/{id}/schedule and /api/rooms/{id}/accommodations[/{student_id}].
import { $, api, el, kindLabel, show, signalKinds } from "./common.js";
import { lang, t, typed } from "./i18n.js";
import { formatWhen } from "./schedule-words.js";
import { fillWindow, readWindow } from "./window-fields.js";

function describeWindow(w) {
  if (!w) return t("sched.no_window");
  const parts = [];
  if (w.opens_at) parts.push(t("sched.opens", { when: formatWhen(w.opens_at) }));
  if (w.latest_start) parts.push(t("sched.last_start", { when: formatWhen(w.latest_start) }));
  if (w.closes_at) parts.push(t(w.hard_close ? "sched.closes_hard" : "sched.closes", { when: formatWhen(w.closes_at) }));
  return parts.length ? parts.join(", ") : t("sched.no_limits");
}

function errorText(err) {
  const fields = err.fields && err.code === "invalid" ? ` (${Object.entries(err.fields).map(([k, v]) => `${k}: ${v}`).join("; ")})` : "";
  return t("sched.not_saved", { reason: `${err.message}${fields}` });
}

function extraText(a, durationSeconds) {
  const seconds = Math.ceil(durationSeconds * a.extra_percent / 100) + a.extra_minutes * 60;
  const parts = [];
  if (a.extra_percent) parts.push(new Intl.NumberFormat(lang, { style: "percent", maximumFractionDigits: 1 }).format(a.extra_percent / 100));
  if (a.extra_minutes) parts.push(t("sched.minutes_short", { count: a.extra_minutes }));
  if (!parts.length) return t("sched.none");
  // A percentage is of this exam's duration: say what it comes to.
  return a.extra_percent ? t("sched.extra_comes_to", { extra: parts.join(" + "), count: Math.round(seconds / 6) / 10 }) : parts.join("");
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
        el("input", { type: "checkbox", value: kind.id, name: "rules_off" }), kindLabel(kind.id)));
    }
  }

  async loadWindow() {
    try {
      const data = await api(this.token, "GET", `${this.base}/schedule`);
      const own = data.schedule;
      $("#window-state").textContent = own
        ? t("sched.this_room", { window: describeWindow(own) })
        : t("sched.follows_exam", { window: describeWindow(data.exam_schedule) });
      fillWindow("win", own);
    } catch (err) {
      $("#window-state").textContent = t("sched.window_unavailable", { reason: err.message });
    }
  }

  async saveWindow() {
    const body = readWindow("win");
    if (!body) return this.clearWindow(); // no limit set: the room follows the exam's window
    try {
      await api(this.token, "PUT", `${this.base}/schedule`, body);
      $("#window-result").textContent = t("sched.saved_window");
      await this.loadWindow();
    } catch (err) {
      $("#window-result").textContent = errorText(err);
    }
  }

  async clearWindow() {
    try {
      await api(this.token, "DELETE", `${this.base}/schedule`);
      $("#window-result").textContent = t("sched.saved_follows");
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
        body.append(el("tr", {}, el("td", { colspan: "6", class: "muted" }, t("sched.no_accommodations"))));
      }
    } catch (err) {
      body.replaceChildren(el("tr", {}, el("td", { colspan: "6" }, t("sched.accommodations_unavailable", { reason: err.message }))));
    }
  }

  row(a) {
    const status = a.attempt ? t(`status.${a.attempt.status}`) : "";
    const attempt = a.attempt
      ? (["active", "paused"].includes(a.attempt.status) ? t("sched.status_deadline", { status, when: formatWhen(a.attempt.deadline) }) : status)
      : t("sched.not_started");
    return el("tr", { "data-student": a.student_id },
      el("th", { scope: "row" }, typed(a.attempt?.student_name ? `${a.attempt.student_name} (${a.student_id})` : a.student_id)),
      el("td", {}, extraText(a, this.duration)),
      el("td", {}, a.rules_off.map((id) => kindLabel(id)).join(", ") || t("sched.none")),
      el("td", {}, typed(a.note || "")),
      el("td", {}, attempt),
      el("td", {},
        el("button", { type: "button", class: "small secondary", onclick: () => this.edit(a) }, t("sched.edit_student", { id: a.student_id })), " ",
        el("button", { type: "button", class: "small danger", onclick: () => this.remove(a.student_id) }, t("sched.remove_student", { id: a.student_id }))));
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
        ? t("sched.saved_running", { id: student })
        : t("sched.saved_later", { id: student });
      await this.loadAccommodations();
    } catch (err) {
      $("#acc-result").textContent = errorText(err);
    }
  }

  async remove(student) {
    try {
      await api(this.token, "DELETE", `${this.base}/accommodations/${encodeURIComponent(student)}`);
      $("#acc-result").textContent = t("sched.removed", { id: student });
      await this.loadAccommodations();
    } catch (err) {
      $("#acc-result").textContent = errorText(err);
    }
  }
}
