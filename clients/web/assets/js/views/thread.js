// A thread: its reply tree in path order (pre-order, contract 1.2), indented by depth, with the actions a
// message allows: reply, edit and delete one's own, restore (owners and admins), and Stop on an assistant
// answer that is still streaming.

import { formatTime, h, setText, syncList, uniqueId } from "../dom.js";
import { presenceDot } from "./presence_dot.js";

const MAX_INDENT = 12;

const STATUS_TAGS = {
  streaming: "answering…",
  cancelled: "stopped",
  failed: "failed",
};

/**
 * actions: {me(), name(userId), presence(userId), canWrite(), canModerate(),
 *           reply(message), edit(message, content) -> Promise, remove(message) -> Promise,
 *           restore(message) -> Promise, stop(message) -> Promise}
 */
export function createThreadView(actions) {
  const list = h("ol", { class: "tree", "aria-label": "Messages" });
  const editing = new Set();
  const confirming = new Set();
  let latest = [];

  function rerender() {
    update(latest);
  }

  function own(message) {
    return message.author_user_id && message.author_user_id === actions.me().id;
  }

  function actionButtons(message) {
    const buttons = [];
    if (editing.has(message.id)) return buttons; // the edit form has its own Save and Cancel
    const deleted = Boolean(message.deleted_at);
    const streaming = message.status === "streaming";
    const author = authorName(message);
    if (streaming && message.role === "assistant" && actions.canWrite()) {
      buttons.push(
        h("button", { type: "button", class: "danger", dataset: { action: "stop" },
          "aria-label": "Stop the assistant's answer", onclick: () => actions.stop(message) }, "Stop"),
      );
    }
    if (actions.canWrite()) {
      buttons.push(
        h("button", { type: "button", dataset: { action: "reply" }, "aria-label": `Reply to ${author}`,
          onclick: () => actions.reply(message) }, "Reply"),
      );
    }
    const mayChange = actions.canWrite() && (own(message) || (actions.canModerate() && !message.author_user_id));
    if (!deleted && !streaming && mayChange) {
      buttons.push(
        h("button", { type: "button", dataset: { action: "edit" }, "aria-label": `Edit message of ${author}`,
          onclick: () => {
            editing.add(message.id);
            rerender();
            list.querySelector(`[data-message-id="${message.id}"] textarea`)?.focus();
          } }, "Edit"),
        h("button", { type: "button", dataset: { action: "delete" }, "aria-label": `Delete message of ${author}`,
          onclick: () => {
            confirming.add(message.id);
            rerender();
            list.querySelector(`[data-message-id="${message.id}"] [data-action="confirm-delete"]`)?.focus();
          } }, "Delete"),
      );
    }
    if (deleted && actions.canModerate()) {
      buttons.push(
        h("button", { type: "button", dataset: { action: "restore" }, onclick: () => actions.restore(message) },
          "Restore"),
      );
    }
    return buttons;
  }

  function confirmBox(message) {
    const done = (focusAction) => {
      confirming.delete(message.id);
      rerender();
      if (focusAction) list.querySelector(`[data-message-id="${message.id}"] [data-action="${focusAction}"]`)?.focus();
    };
    return h(
      "div",
      { class: "confirm", role: "group", "aria-label": "Confirm delete" },
      h("span", {}, "Delete this message?"),
      h("button", { type: "button", class: "danger", dataset: { action: "confirm-delete" },
        onclick: async () => {
          try {
            await actions.remove(message);
          } finally {
            done("reply");
          }
        } }, "Delete"),
      h("button", { type: "button", dataset: { action: "keep" }, onclick: () => done("delete") }, "Keep"),
    );
  }

  function editForm(message) {
    const id = uniqueId("edit");
    const textarea = h("textarea", { id, rows: 3, maxlength: 32000, value: message.content });
    const error = h("p", { class: "form-error", role: "alert" });
    const close = () => {
      editing.delete(message.id);
      rerender();
      list.querySelector(`[data-message-id="${message.id}"] [data-action="edit"]`)?.focus();
    };
    const save = async () => {
      if (!textarea.value.trim()) return;
      try {
        await actions.edit(message, textarea.value);
        close();
      } catch (problem) {
        error.textContent = problem.friendly || String(problem);
      }
    };
    textarea.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        save();
      } else if (event.key === "Escape") {
        event.preventDefault();
        close();
      }
    });
    return h(
      "form",
      { class: "edit-form", onsubmit: (event) => (event.preventDefault(), save()) },
      h("label", { for: id }, "Edit message"),
      textarea,
      error,
      h("div", { class: "row" },
        h("button", { type: "submit", class: "primary" }, "Save"),
        h("button", { type: "button", onclick: close }, "Cancel")),
    );
  }

  function authorName(message) {
    if (message.role === "assistant" && !message.author_user_id) return "Assistant";
    return actions.name(message.author_user_id);
  }

  function create() {
    return h(
      "li",
      { class: "msg" },
      h("div", { class: "msg-head" }),
      h("div", { class: "msg-body" }, h("p", { class: "msg-text" })),
      h("div", { class: "msg-actions" }),
    );
  }

  function fill(li, message) {
    const [head, body, actionsBox] = li.children;
    const depth = Math.min(message.depth, MAX_INDENT);
    li.className = `msg depth-${depth} role-${message.role} status-${message.status}` +
      (message.deleted_at ? " deleted" : "") + (own(message) ? " own" : "");
    li.dataset.messageId = message.id;
    li.dataset.status = message.status;
    const author = authorName(message);
    const presence = message.author_user_id ? actions.presence(message.author_user_id) : null;
    const tags = [];
    if (message.edited_at && !message.deleted_at) tags.push("edited");
    if (STATUS_TAGS[message.status]) tags.push(STATUS_TAGS[message.status]);
    const signature = JSON.stringify([author, presence, tags, message.created_at, message.deleted_at,
      message.status, editing.has(message.id), confirming.has(message.id), actions.canWrite(),
      actions.canModerate(), message.error || ""]);
    if (li.dataset.signature !== signature) {
      li.dataset.signature = signature;
      const focusedAction = li.contains(document.activeElement) ? document.activeElement.dataset?.action : null;
      head.replaceChildren(
        h("span", { class: "author" }, presence ? presenceDot(presence) : null, h("strong", {}, author)),
        h("time", { datetime: message.created_at }, formatTime(message.created_at)),
        ...tags.map((tag) => h("span", { class: `tag tag-${tag.replace(/\W/g, "")}` }, tag)),
      );
      li.setAttribute("aria-label", `${author}, ${formatTime(message.created_at)}${tags.length ? `, ${tags.join(", ")}` : ""}`);
      if (editing.has(message.id)) body.replaceChildren(editForm(message));
      else {
        const error = message.error ? [h("p", { class: "msg-error" }, message.error)] : [];
        body.replaceChildren(h("p", { class: "msg-text" }), ...error);
      }
      actionsBox.replaceChildren(...(confirming.has(message.id) ? [confirmBox(message)] : actionButtons(message)));
      if (focusedAction) actionsBox.querySelector(`[data-action="${focusedAction}"]`)?.focus();
    }
    const content = body.querySelector(".msg-text");
    if (content) {
      setText(content, message.deleted_at ? "This message was deleted." : message.content);
      content.setAttribute("aria-busy", String(message.status === "streaming"));
    }
  }

  function update(messages) {
    latest = messages;
    syncList(list, messages, (m) => m.id, create, fill);
  }

  return { el: list, update, rerender };
}
