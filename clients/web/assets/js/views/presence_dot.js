// A presence dot with its status as text for screen readers (colour is never the only signal).

import { h } from "../dom.js";

export function presenceDot(status) {
  return h(
    "span",
    { class: `presence presence-${status}`, role: "img", "aria-label": status, title: status },
  );
}
