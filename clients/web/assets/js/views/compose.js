// The compose box: Enter sends, Shift+Enter starts a new line; typing is reported while the user writes.

import { h, setText, uniqueId } from "../dom.js";

/** actions: {submit(text) -> Promise, typing(text), cancelReply()} */
export function createCompose(actions) {
  const id = uniqueId("compose");
  const label = h("label", { for: id, id: `${id}-label` }, "Message");
  const hint = h("span", { class: "hint", id: `${id}-hint` }, "Enter to send · Shift+Enter for a new line");
  const note = h("span", { class: "hint assistant-note", id: `${id}-note`, hidden: true },
    "The assistant answers every message here.");
  const textarea = h("textarea", {
    id,
    name: "content",
    rows: 3,
    maxlength: 32000,
    "aria-describedby": `${id}-hint ${id}-note`,
  });
  const submit = h("button", { type: "submit", class: "primary", id: `${id}-send` }, "Send");
  const error = h("p", { class: "form-error", role: "alert" });
  const typers = h("p", { class: "typing", "aria-live": "polite" });
  const replyName = h("span");
  const replyBar = h(
    "div",
    { class: "reply-bar", hidden: true },
    h("span", {}, "Replying to ", replyName),
    h("button", { type: "button", class: "link", onclick: () => actions.cancelReply() }, "Cancel reply"),
  );
  let busy = false;

  async function send() {
    const text = textarea.value;
    if (busy || !text.trim()) return;
    busy = true;
    submit.disabled = true;
    error.textContent = "";
    try {
      await actions.submit(text);
      textarea.value = "";
    } catch (problem) {
      error.textContent = problem.friendly || String(problem);
    } finally {
      busy = false;
      submit.disabled = false;
      textarea.focus();
    }
  }

  textarea.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing && !event.altKey && !event.ctrlKey) {
      event.preventDefault();
      send();
    }
  });
  textarea.addEventListener("input", () => actions.typing(textarea.value));

  const el = h(
    "form",
    {
      class: "compose",
      onsubmit: (event) => {
        event.preventDefault();
        send();
      },
    },
    replyBar,
    label,
    textarea,
    h("div", { class: "compose-row" }, h("div", { class: "hints" }, hint, note), submit),
    error,
    typers,
  );

  return {
    el,
    textarea,
    /** label: the textarea's label; assistant: the conversation's assistant answers; replyTo: a name or null */
    setContext({ labelText, assistant, replyTo, canWrite }) {
      setText(label, labelText);
      setText(submit, assistant ? "Ask the assistant" : "Send");
      note.hidden = !assistant;
      replyBar.hidden = !replyTo;
      setText(replyName, replyTo || "");
      textarea.disabled = !canWrite;
      submit.disabled = !canWrite;
      if (!canWrite) textarea.placeholder = "Viewers can read but not write here.";
      else textarea.removeAttribute("placeholder");
    },
    setTypers(text) {
      setText(typers, text);
    },
    focus() {
      textarea.focus();
    },
  };
}
