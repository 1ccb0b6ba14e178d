// The student's outbox: every answer and event is written to localStorage before it is
// sent, and removed only when the server acknowledged it with {ok: true} (the server acks
// only after Postgres committed the row). After a reconnect or a reload, once `join` has
// answered, everything still here is sent again; the server is idempotent on (attempt, seq).
import { call, localStore } from "./common.js";

// Error codes after which re-sending the same message can never succeed.
const PERMANENT = new Set(["invalid", "attempt_closed", "too_large", "unknown_event", "forbidden", "not_found"]);

export class Outbox {
  constructor(attemptId, { onChange = () => {}, onResult = () => {} } = {}) {
    this.attemptId = attemptId;
    this.key = `proctor.outbox.${attemptId}`;
    this.seqKey = `proctor.seq.${attemptId}`;
    this.onChange = onChange; // (pendingCount) after every change
    this.onResult = onResult; // (message, ack) after every final outcome
    this.items = this.#load();
    this.inFlight = new Set();
    this.socket = null;
    this.paused = false;
    this.retryTimer = null;
  }

  #load() {
    try {
      const items = JSON.parse(localStore.getItem(this.key) || "[]");
      return Array.isArray(items) ? items : [];
    } catch {
      return [];
    }
  }

  #save() {
    try {
      localStore.setItem(this.key, JSON.stringify(this.items));
    } catch {
      // Storage full or blocked: the message still goes out, it just would not survive a reload.
    }
    this.onChange(this.items.length);
  }

  // Sequence numbers: one counter per attempt for answers and events, never reused (a reused
  // seq would be taken for a duplicate and dropped), continuing above the server's last_seq.
  startAbove(lastSeq) {
    const stored = Number(localStore.getItem(this.seqKey) || 0);
    const pending = Math.max(0, ...this.items.map((m) => m.payload.seq));
    this.seq = Math.max(stored, pending, Number(lastSeq) || 0);
    localStore.setItem(this.seqKey, String(this.seq));
  }

  nextSeq() {
    this.seq += 1;
    localStore.setItem(this.seqKey, String(this.seq));
    return this.seq;
  }

  get size() {
    return this.items.length;
  }

  pending(event, predicate) {
    return this.items.filter((m) => m.event === event && (!predicate || predicate(m.payload)));
  }

  // Store, then send. For answers, an older unsent answer to the same question is dropped:
  // the server keeps the last write by seq anyway.
  put(event, payload) {
    const message = { event, payload: { ...payload, seq: this.nextSeq() } };
    if (event === "answer") {
      this.items = this.items.filter(
        (m) => !(m.event === "answer" && m.payload.question_id === payload.question_id && !this.inFlight.has(m.payload.seq)));
    }
    this.items.push(message);
    this.#save();
    this.flush();
    return message;
  }

  attach(socket) {
    this.socket = socket;
  }

  // Send everything not already in flight, in seq order. Called after join and on retries.
  flush() {
    if (!this.socket || !this.socket.connected || !this.joined) return;
    const order = [...this.items].sort((a, b) => a.payload.seq - b.payload.seq);
    for (const message of order) {
      if (this.inFlight.has(message.payload.seq)) continue;
      if (this.paused && message.event === "answer") continue;
      this.#send(message);
    }
  }

  async #send(message) {
    const seq = message.payload.seq;
    this.inFlight.add(seq);
    const ack = await call(this.socket, message.event, message.payload);
    this.inFlight.delete(seq);
    if (ack.ok) {
      this.#remove(seq);
      this.onResult(message, ack);
      return;
    }
    const code = ack.error?.code;
    if (PERMANENT.has(code)) {
      this.#remove(seq);
      this.onResult(message, ack);
    } else if (code === "paused") {
      this.paused = true; // re-sent by resume()
      this.onResult(message, ack);
    } else if (code === "not_joined") {
      this.joined = false; // the page joins again, then flushes
      this.onResult(message, ack);
    } else {
      // rate_limited, unavailable, busy, internal, capacity, timeout: later.
      const wait = Math.max(0.2, Number(ack.error?.retry_after) || 2);
      clearTimeout(this.retryTimer);
      this.retryTimer = setTimeout(() => this.flush(), wait * 1000);
    }
  }

  #remove(seq) {
    this.items = this.items.filter((m) => m.payload.seq !== seq);
    this.#save();
  }

  resume() {
    this.paused = false;
    this.flush();
  }

  // Resolve once nothing is waiting (or after timeoutMs): used before submitting.
  async drain(timeoutMs = 8000) {
    const end = Date.now() + timeoutMs;
    this.flush();
    while (this.items.length && Date.now() < end) {
      await new Promise((r) => setTimeout(r, 100));
    }
    return this.items.length === 0;
  }

  clear() {
    this.items = [];
    this.#save();
  }
}
