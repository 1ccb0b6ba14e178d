// The student's system check: browser support, camera, connection. Each item says in
// plain words what failed and what to do about it.
import { el } from "./common.js";

// The page caps what it sends: the server cannot lower a sender's resolution or frame rate.
export const CAMERA_CONSTRAINTS = {
  audio: false,
  video: {
    width: { ideal: 320, max: 320 },
    height: { ideal: 240, max: 240 },
    frameRate: { ideal: 5, max: 5 },
  },
};

export async function openCamera() {
  if (!navigator.mediaDevices?.getUserMedia) {
    throw new Error("This browser cannot use a camera here (it needs a secure https:// page).");
  }
  try {
    return await navigator.mediaDevices.getUserMedia(CAMERA_CONSTRAINTS);
  } catch (err) {
    const reasons = {
      NotAllowedError: "Camera permission was refused. Allow the camera for this site (the camera icon in the address bar), then check again.",
      NotFoundError: "No camera was found. Connect a camera, then check again.",
      NotReadableError: "The camera is in use by another program. Close it, then check again.",
      OverconstrainedError: "The camera does not support a small enough picture.",
    };
    throw new Error(reasons[err.name] || `The camera could not be started (${err.name || err}).`);
  }
}

function browserProblems() {
  const missing = [];
  if (!window.RTCPeerConnection) missing.push("WebRTC");
  if (!window.WebSocket) missing.push("WebSocket");
  if (!navigator.mediaDevices?.getUserMedia) missing.push("camera access");
  try {
    localStorage.setItem("proctor.probe", "1");
    localStorage.removeItem("proctor.probe");
  } catch {
    missing.push("local storage (private mode may block it)");
  }
  return missing;
}

function item(list, name) {
  const status = el("span", { class: "status" }, "checking…");
  const text = el("span", { class: "detail" });
  const li = el("li", { class: "pending" }, el("strong", {}, name), " ", status, el("br"), text);
  list.append(li);
  return {
    pass(detail = "") {
      li.className = "pass";
      status.textContent = "OK";
      text.textContent = detail;
    },
    fail(detail) {
      li.className = "fail";
      status.textContent = "Problem";
      text.textContent = detail;
    },
  };
}

// Runs every check; resolves to {ok, stream}. `socketReady` resolves when the Socket.IO
// connection is up (or rejects with a readable reason).
export async function runChecks(list, preview, socketReady, previousStream) {
  list.replaceChildren();
  let ok = true;

  const browser = item(list, "Browser");
  const missing = browserProblems();
  if (missing.length) {
    ok = false;
    browser.fail(`This browser lacks: ${missing.join(", ")}. Use a current Chrome, Edge or Firefox.`);
  } else {
    browser.pass(document.fullscreenEnabled ? "" : "Full screen is not available; the exam still works.");
  }

  const camera = item(list, "Camera");
  let stream = previousStream && previousStream.active ? previousStream : null;
  try {
    stream = stream || (await openCamera());
    preview.srcObject = stream;
    const settings = stream.getVideoTracks()[0]?.getSettings() || {};
    const size = settings.width ? `${settings.width}×${settings.height}` : "";
    camera.pass(`Camera is working ${size ? `(${size})` : ""}.`);
  } catch (err) {
    ok = false;
    camera.fail(err.message);
  }

  const connection = item(list, "Connection");
  try {
    const started = performance.now();
    const resp = await fetch("/healthz", { cache: "no-store" });
    if (!resp.ok) throw new Error(`the exam server answered ${resp.status}`);
    const ms = Math.round(performance.now() - started);
    await socketReady();
    connection.pass(`Connected to the exam server (${ms} ms).`);
  } catch (err) {
    ok = false;
    connection.fail(`${err.message || err}. Check your internet connection, then check again.`);
  }
  return { ok, stream };
}
