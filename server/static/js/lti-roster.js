// The dashboard's "Not joined yet" list for a room linked to a learning-platform course
// (Step 11 B, docs/lti.md "Roster (NRPS)"): the imported roster minus who has an attempt.
import { $, api, el, show } from "./common.js";
import { formatNumber, t, typed } from "./i18n.js";

const REFRESH_MS = 30000;

async function refresh(token, roomId) {
  const data = await api(token, "GET", `/api/rooms/${encodeURIComponent(roomId)}/lti/roster`);
  if (!data.linked) return false;
  const missing = data.members.filter((m) => !m.joined);
  $("#lti-roster-count").textContent = formatNumber(missing.length);
  $("#lti-roster-list").replaceChildren(
    ...missing.map((m) => el("li", {}, typed(m.name || m.email || m.student_id))),
  );
  show($("#lti-roster"));
  return true;
}

export async function showNotJoined(token, roomId) {
  try {
    if (!(await refresh(token, roomId))) return;
  } catch {
    return; // no roster for this viewer: the dashboard works without it
  }
  $("#lti-roster-import").addEventListener("click", async () => {
    const status = $("#lti-roster-status");
    status.textContent = t("dash.roster_importing");
    try {
      const done = await api(token, "POST", `/api/rooms/${encodeURIComponent(roomId)}/lti/roster`);
      status.textContent = t("dash.roster_imported", { count: done.imported });
      await refresh(token, roomId);
    } catch (err) {
      status.textContent = err.message || String(err);
    }
  });
  setInterval(() => refresh(token, roomId).catch(() => {}), REFRESH_MS);
}
