// Threadline's web page: plain ES modules, no build step (contract 2.6).

import { App } from "./app.js";

const app = new App(document.getElementById("app"));
window.threadline = {
  app,
  /** The open conversation's stream bookkeeping (used by the browser tests). */
  stream() {
    const stream = app.session?.stream;
    return stream
      ? { conversationId: stream.conversationId, lastSeq: stream.lastSeq, applied: [...stream.applied],
          skipped: stream.skipped, opens: stream.opens }
      : null;
  },
};
app.boot();
