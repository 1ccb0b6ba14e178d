// The snapshot transport to the server's analysis (the node's PROCTOR_ANALYSIS_TRANSPORT,
// sent in the join ack as analysis.transport = "snapshot"): once per sample interval the
// page draws the camera into a small canvas and sends it as a JPEG over the exam's own
// Socket.IO connection (`frame`, binary). The server analyses exactly the frames it is
// sent — no video track, no decoding of frames nobody looks at — and the JPEG is itself the
// teacher's thumbnail and a violation's evidence (docs/architecture.md, "Analysis transport").
//
// Analysis is a help for the teacher; the exam never depends on it: a refusal that will not
// change (attempt closed, analysis off) stops the loop until the next join, anything else
// is retried at the next interval or after the server's retry_after.
import { call } from "./common.js";

// 320 px at quality 0.6: 8-15 KiB a frame. The server detects faces on a 160-px copy and
// judges blur on this width; the evidence a reviewer opens is this picture.
const SNAPSHOT_WIDTH = 320;
const QUALITY = 0.6;
// Answers before analysis (js/exam.js strainUplink): while answers wait on a weak link, one
// small frame every LOW_EVERY intervals (~2 KiB at 160 px), the full cadence 5 s after.
const LOW_WIDTH = 160;
const LOW_QUALITY = 0.5;
const LOW_EVERY = 5;
const ACK_TIMEOUT_MS = 5000;
// Frames leave at least this share of an interval apart (the server refuses under half).
const MIN_GAP = 0.75;
const FINAL = new Set(["attempt_closed", "analysis_off", "analysis_unavailable", "rtc_unavailable", "not_joined", "unknown_event"]);

export class SnapshotLink {
  constructor(socket, getStream, intervalSeconds, onCaps = () => {}) {
    this.socket = socket;
    this.onCaps = onCaps; // (null, lowered): the page says when the camera uplink is lowered
    this.lowered = false;
    this.getStream = getStream;
    this.intervalMs = Math.max(50, (intervalSeconds || 1) * 1000);
    this.running = false;
    this.generation = 0;
    this.timer = null;
    this.video = null;
    this.canvas = document.createElement("canvas");
    this.sent = 0; // for tests and the console: frames the server took
    this.lastSentAt = -Infinity;
  }

  // On every join (a reconnect may have landed on another node).
  start() {
    this.stop();
    this.running = true;
    const generation = this.generation;
    this.timer = setTimeout(() => this.#tick(generation), 0);
  }

  // Lower (true) or restore (false) the uplink, as AnalysisLink.lower does for the track.
  lower(on) {
    if (this.lowered === on) return;
    this.lowered = on;
    this.onCaps(null, on);
  }

  stop() {
    this.running = false;
    this.generation += 1;
    clearTimeout(this.timer);
    if (this.video) {
      this.video.srcObject = null;
      this.video = null;
    }
  }

  async #tick(generation) {
    if (!this.running || generation !== this.generation) return;
    const started = performance.now();
    let waitMs = this.lowered ? this.intervalMs * LOW_EVERY : this.intervalMs;
    try {
      const jpeg = await this.#grab();
      if (jpeg && this.running && generation === this.generation) {
        this.lastSentAt = performance.now();
        const ack = await call(this.socket, "frame", { jpeg }, ACK_TIMEOUT_MS);
        if (ack.ok) this.sent += 1;
        else if (FINAL.has(ack.error?.code)) {
          this.running = false;
          return;
        } else if (ack.error?.retry_after) waitMs = Math.max(waitMs, ack.error.retry_after * 1000);
      }
    } catch (err) {
      console.warn("analysis snapshot:", err);
    }
    if (!this.running || generation !== this.generation) return;
    // One frame per interval from the start of this one, not from the ack: a slow ack must
    // not shift every later frame. But never sooner than MIN_GAP of an interval after the
    // last send: a slow grab (the first video.play(), a busy tab) followed by a fast one
    // would otherwise put two frames closer than the server takes (half an interval).
    const now = performance.now();
    const next = Math.max(started + waitMs, this.lastSentAt + waitMs * MIN_GAP);
    this.timer = setTimeout(() => this.#tick(generation), Math.max(0, next - now));
  }

  // A JPEG of the camera as it is now (an ArrayBuffer), or null while it is not playing.
  async #grab() {
    const stream = this.getStream();
    const track = stream?.getVideoTracks()[0];
    if (!track || track.readyState !== "live") return null;
    if (!this.video || this.video.srcObject !== stream) {
      const video = document.createElement("video");
      video.muted = true;
      video.playsInline = true;
      video.srcObject = stream;
      this.video = video;
      await video.play();
    }
    const { videoWidth, videoHeight } = this.video;
    if (!videoWidth || !videoHeight) return null;
    const width = Math.min(this.lowered ? LOW_WIDTH : SNAPSHOT_WIDTH, videoWidth);
    const height = Math.round((videoHeight * width) / videoWidth);
    this.canvas.width = width;
    this.canvas.height = height;
    this.canvas.getContext("2d").drawImage(this.video, 0, 0, width, height);
    const blob = await new Promise((resolve) => this.canvas.toBlob(resolve, "image/jpeg", this.lowered ? LOW_QUALITY : QUALITY));
    return blob ? blob.arrayBuffer() : null;
  }
}
