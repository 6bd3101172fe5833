// One EventSource per open conversation (contract 6): the browser's own reconnection first (it sends
// Last-Event-ID), and when the browser gives up (the edge answered 502 while the streamer was away), a new
// EventSource with ?last_event_id= after a backoff with jitter. Durable events are passed on once: an event
// whose sequence number is not above the highest one already passed on is dropped, so a resume never shows
// anything twice.

export const DURABLE_TYPES = [
  "thread.new",
  "thread.activity",
  "message.created",
  "message.updated",
  "message.delta",
  "message.done",
  "unread.update",
  "membership.changed",
];
export const EPHEMERAL_TYPES = ["presence.update", "typing.update"];

const BACKOFF_FIRST_MS = 1000;
const BACKOFF_MAX_MS = 15000;

export class ConversationStream {
  /**
   * handlers: onEvent(type, payload), onStatus("connecting" | "live" | "reconnecting"),
   * onResync() (state must be reloaded over REST), beforeReconnect() (async; throw to give up).
   */
  constructor(conversationId, handlers) {
    this.conversationId = conversationId;
    this.handlers = handlers;
    this.lastSeq = null; // highest durable sequence number passed on
    this.applied = []; // every sequence number passed on, in order (read by the tests)
    this.skipped = 0; // durable events dropped as already seen
    this.opens = 0;
    this.status = "connecting";
    this.source = null;
    this.timer = null;
    this.attempts = 0;
    this.closed = false;
    this.reloadOnOpen = false;
    this.opened = new Promise((resolve) => (this.resolveOpened = resolve));
  }

  start() {
    this.setStatus("connecting");
    this.connect();
  }

  setStatus(status) {
    this.status = status;
    this.handlers.onStatus(status);
  }

  close() {
    this.closed = true;
    clearTimeout(this.timer);
    this.source?.close();
    this.source = null;
  }

  connect() {
    if (this.closed) return;
    let url = `/api/stream/conversations/${this.conversationId}`;
    if (this.lastSeq !== null) url += `?last_event_id=${this.lastSeq}`;
    else if (this.opens > 0) this.reloadOnOpen = true; // nothing to resume from: refetch instead
    const source = new EventSource(url, { withCredentials: true });
    this.source = source;
    source.onopen = () => {
      if (source !== this.source) return;
      this.opens += 1;
      this.attempts = 0;
      this.setStatus("live");
      this.resolveOpened();
      if (this.reloadOnOpen) {
        this.reloadOnOpen = false;
        this.handlers.onResync();
      }
    };
    source.onerror = (event) => {
      // The server's own "error" events (assistant errors, resync_required) reach onerror too.
      if (typeof event.data === "string") return;
      if (source !== this.source || this.closed) return;
      this.setStatus("reconnecting");
      if (source.readyState === EventSource.CLOSED) {
        this.scheduleReconnect();
      } else if (this.lastSeq === null) {
        // The browser reconnects by itself, but without an id to resume from.
        this.reloadOnOpen = true;
      }
    };
    for (const type of [...DURABLE_TYPES, ...EPHEMERAL_TYPES, "error"]) {
      source.addEventListener(type, (event) => {
        if (source === this.source) this.dispatch(type, event);
      });
    }
  }

  scheduleReconnect() {
    this.source?.close();
    const ceiling = Math.min(BACKOFF_MAX_MS, BACKOFF_FIRST_MS * 2 ** this.attempts);
    const delay = ceiling / 2 + Math.random() * (ceiling / 2);
    this.attempts += 1;
    clearTimeout(this.timer);
    this.timer = setTimeout(async () => {
      if (this.closed) return;
      try {
        await this.handlers.beforeReconnect();
      } catch (error) {
        if (error?.status === 401 || error?.status === 403) return; // the session or membership is gone
      }
      this.connect();
    }, delay);
  }

  dispatch(type, event) {
    // A plain connection error also fires "error" (an Event without data); only MessageEvents are ours.
    if (typeof event.data !== "string") return;
    let envelope;
    try {
      envelope = JSON.parse(event.data);
    } catch {
      return;
    }
    const payload = envelope.payload || {};
    if (type === "error" && payload.code === "resync_required") {
      // The cursor is past (or older than) the log: forget it, or every later event would count as seen.
      this.lastSeq = null;
      this.handlers.onResync();
      return;
    }
    // Ephemeral events carry no id: (the browser's lastEventId then still holds the previous durable id).
    const durable = DURABLE_TYPES.includes(type) || (type === "error" && payload.message_id);
    if (durable) {
      const seq = Number(event.lastEventId);
      if (!Number.isSafeInteger(seq)) return;
      if (this.lastSeq !== null && seq <= this.lastSeq) {
        this.skipped += 1;
        return;
      }
      this.lastSeq = seq;
      this.applied.push(seq);
    }
    this.handlers.onEvent(type, payload);
  }
}
