// The student's system check: browser support, camera, the microphone (only for an exam that
// listens for speech), connection. Each item says in plain words what failed and what to do.
import { lang, t } from "./i18n.js";
import { el, localStore } from "./common.js";

// The page caps what it sends: the server cannot lower a sender's resolution or frame rate.
export const CAMERA_CONSTRAINTS = {
  audio: false,
  video: {
    width: { ideal: 320, max: 320 },
    height: { ideal: 240, max: 240 },
    frameRate: { ideal: 5, max: 5 },
  },
};

// Speech detection needs one channel; the server resamples to 16 kHz. Echo cancellation
// keeps a video call's loudspeaker (or the exam's own sounds) from counting as the student.
export const MICROPHONE_CONSTRAINTS = { channelCount: 1, echoCancellation: true };

// `withMicrophone` only when the exam analyses speech: otherwise the page never asks for it
// (and the server's Permissions-Policy would refuse it anyway).
export async function openCamera(withMicrophone = false) {
  if (!navigator.mediaDevices?.getUserMedia) {
    throw new Error(t("check.camera_insecure"));
  }
  const constraints = { ...CAMERA_CONSTRAINTS, audio: withMicrophone ? MICROPHONE_CONSTRAINTS : false };
  try {
    return await navigator.mediaDevices.getUserMedia(constraints);
  } catch (err) {
    const reasons = {
      NotAllowedError: withMicrophone ? "check.refused_mic" : "check.refused",
      NotFoundError: withMicrophone ? "check.not_found_mic" : "check.not_found",
      NotReadableError: "check.in_use",
      OverconstrainedError: "check.overconstrained",
    };
    throw new Error(reasons[err.name] ? t(reasons[err.name]) : t("check.camera_failed", { reason: err.name || String(err) }));
  }
}

function browserProblems() {
  const missing = [];
  if (!window.RTCPeerConnection) missing.push("WebRTC");
  if (!window.WebSocket) missing.push("WebSocket");
  if (!navigator.mediaDevices?.getUserMedia) missing.push(t("check.missing_camera"));
  try {
    // The stand-in of a framed page that may not use storage passes (common.js storageOr).
    localStore.setItem("proctor.probe", "1");
    localStore.removeItem("proctor.probe");
  } catch {
    missing.push(t("check.missing_storage"));
  }
  return missing;
}

function item(list, name) {
  const status = el("span", { class: "status" }, t("check.checking"));
  const text = el("span", { class: "detail" });
  const li = el("li", { class: "pending" }, el("strong", {}, name), " ", status, el("br"), text);
  list.append(li);
  return {
    pass(detail = "") {
      li.className = "pass";
      status.textContent = t("check.ok");
      text.textContent = detail;
    },
    fail(detail) {
      li.className = "fail";
      status.textContent = t("check.problem");
      text.textContent = detail;
    },
  };
}

// Runs every check; resolves to {ok, stream}. `socketReady` resolves when the Socket.IO
// connection is up (or rejects with a readable reason).
export async function runChecks(list, preview, socketReady, previousStream, withMicrophone = false) {
  list.replaceChildren();
  let ok = true;

  const browser = item(list, t("check.browser"));
  const missing = browserProblems();
  if (missing.length) {
    ok = false;
    browser.fail(t("check.browser_lacks", { missing: new Intl.ListFormat(lang).format(missing) }));
  } else {
    browser.pass(document.fullscreenEnabled ? "" : t("check.no_fullscreen"));
  }

  const camera = item(list, t("check.camera"));
  let stream = previousStream && previousStream.active ? previousStream : null;
  if (stream && withMicrophone && !stream.getAudioTracks().length) stream = null;
  try {
    stream = stream || (await openCamera(withMicrophone));
    preview.srcObject = stream;
    const settings = stream.getVideoTracks()[0]?.getSettings() || {};
    const size = settings.width ? `${settings.width}×${settings.height}` : "";
    camera.pass(size ? t("check.camera_ok_size", { size }) : t("check.camera_ok"));
  } catch (err) {
    ok = false;
    camera.fail(err.message);
  }
  if (withMicrophone) {
    const microphone = item(list, t("check.microphone"));
    const track = stream?.getAudioTracks()[0];
    if (track && track.readyState === "live") {
      microphone.pass(t("check.microphone_ok"));
    } else {
      ok = false;
      microphone.fail(t("check.microphone_needed"));
    }
  }

  const connection = item(list, t("check.connection"));
  try {
    const started = performance.now();
    const resp = await fetch("/healthz", { cache: "no-store" });
    if (!resp.ok) throw new Error(t("check.server_answered", { status: resp.status }));
    const ms = Math.round(performance.now() - started);
    await socketReady();
    connection.pass(t("check.connected", { ms }));
  } catch (err) {
    ok = false;
    connection.fail(t("check.connection_failed", { reason: err.message || String(err) }));
  }
  return { ok, stream };
}
