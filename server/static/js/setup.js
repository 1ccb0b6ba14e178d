// First-admin setup: the one-time code comes in the link's fragment (#code=…), which is never
// sent to the server in a request line or a Referer; it is posted once with the new account.
import { errorText, t } from "./i18n.js";
import { $, show } from "./common.js";

const code = new URLSearchParams(location.hash.slice(1)).get("code");
history.replaceState(null, "", location.pathname);

function fail(message) {
  const box = $("#setup-error");
  box.textContent = message;
  show(box);
}

async function create(event) {
  event.preventDefault();
  show($("#setup-error"), false);
  const resp = await fetch("/auth/setup", {
    method: "POST", credentials: "same-origin",
    headers: { "Content-Type": "application/json", Accept: "application/json" },
    body: JSON.stringify({
      code, email: $("#setup-email").value.trim(), name: $("#setup-name").value.trim(),
      password: $("#setup-password").value,
    }),
  }).catch(() => null);
  if (resp?.ok) {
    location.href = "/teacher/";
    return;
  }
  const data = resp ? await resp.json().catch(() => null) : null;
  const fields = data?.error?.fields ? ` (${Object.entries(data.error.fields).map(([k, v]) => `${k}: ${v}`).join(", ")})` : "";
  fail((data?.error ? errorText(data.error) : t("setup.unreachable")) + fields);
}

if (!code) fail(t("setup.needs_code"));
$("#setup-form").addEventListener("submit", create);
