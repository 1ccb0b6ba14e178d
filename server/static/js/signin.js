// The sign-in page: email and password → POST /auth/signin (JSON) → the session cookie is set
// by the answer, and the teacher goes on to /teacher/. Too many attempts show when to retry.
import { errorText, t } from "./i18n.js";
import { $, show } from "./common.js";

function fail(message) {
  const box = $("#signin-error");
  box.textContent = message;
  show(box);
}

let retryTimer = null;

function waitThenRetry(seconds) {
  const button = $("#signin-submit");
  let left = Math.max(1, Math.ceil(seconds));
  button.disabled = true;
  clearInterval(retryTimer);
  const tick = () => {
    if (left <= 0) {
      clearInterval(retryTimer);
      button.disabled = false;
      fail(t("signin.try_again_now"));
      return;
    }
    fail(t("signin.too_many", { seconds: left }));
    left -= 1;
  };
  tick();
  retryTimer = setInterval(tick, 1000);
}

async function signIn(event) {
  event.preventDefault();
  show($("#signin-error"), false);
  const email = $("#signin-email").value.trim();
  const password = $("#signin-password").value;
  if (!email || !password) {
    fail(t("signin.enter_both"));
    return;
  }
  let resp;
  try {
    resp = await fetch("/auth/signin", {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify({ email, password }),
    });
  } catch {
    fail(t("signin.unreachable"));
    return;
  }
  if (resp.ok) {
    sessionStorage.removeItem("proctor.teacher.token"); // the session replaces a pasted token
    location.href = "/teacher/";
    return;
  }
  const data = await resp.json().catch(() => null);
  if (resp.status === 429) {
    waitThenRetry(Number(resp.headers.get("Retry-After")) || data?.error?.retry_after || 60);
    return;
  }
  fail(data?.error ? errorText(data.error) : t("signin.failed", { status: resp.status }));
}

$("#signin-form").addEventListener("submit", signIn);
