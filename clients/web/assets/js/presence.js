// Presence and typing (contract 7): a heartbeat about every 25 s while the page is open ("away" while it is
// hidden), and typing calls while the user writes, at most one every few seconds.

import { api } from "./api.js";

const HEARTBEAT_INTERVAL_MS = 25000;
const TYPING_SECONDS = 6;
const TYPING_RESEND_MS = 3000;

export class Heartbeat {
  constructor() {
    this.timer = null;
    this.onVisibility = () => this.beat();
  }

  start() {
    this.stop();
    this.beat();
    this.timer = setInterval(() => this.beat(), HEARTBEAT_INTERVAL_MS);
    document.addEventListener("visibilitychange", this.onVisibility);
  }

  stop() {
    clearInterval(this.timer);
    this.timer = null;
    document.removeEventListener("visibilitychange", this.onVisibility);
  }

  beat() {
    const status = document.visibilityState === "hidden" ? "away" : "online";
    api.post("/api/presence/heartbeat", { status }).catch(() => {});
  }
}

/** Sends typing for one place (a conversation and a thread root, or none for a new thread). */
export class TypingNotifier {
  constructor() {
    this.lastSent = 0;
    this.target = null; // "conversation/root"
    this.last = null;
  }

  typing(conversationId, rootId) {
    const target = `${conversationId}/${rootId || "-"}`;
    const now = Date.now();
    if (target === this.target && now - this.lastSent < TYPING_RESEND_MS) return;
    if (this.target && target !== this.target) this.stopped();
    this.target = target;
    this.lastSent = now;
    this.send(conversationId, rootId, TYPING_SECONDS);
  }

  /** The text was cleared or the user went elsewhere. (Posting clears typing on the server by itself.) */
  stopped() {
    if (!this.target) return;
    const [conversationId, root] = this.target.split("/");
    this.target = null;
    this.lastSent = 0;
    this.send(conversationId, root === "-" ? null : root, 0);
  }

  /** After a post: the server has already cleared the entry. */
  sent() {
    this.target = null;
    this.lastSent = 0;
  }

  send(conversationId, rootId, seconds) {
    const body = { conversation_id: conversationId, seconds };
    if (rootId) body.root_id = rootId;
    this.last = api.post("/api/typing", body).catch(() => {});
  }

  /** Wait for the last typing call: a post must reach the server after it, or its typing would outlive it. */
  settled() {
    return this.last || Promise.resolve();
  }
}
