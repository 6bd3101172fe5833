// The conversation list with unread badges, the new-conversation form and joining by an invite link.

import { h, setText, syncList, uniqueId } from "../dom.js";

/** actions: {create({title, is_group, assistant_replies}) -> Promise, join(linkOrToken)} */
export function createSidebar(actions) {
  const list = h("ul", { class: "conversation-list", "aria-labelledby": "conversations-title" });
  const empty = h("p", { class: "muted empty" }, "No conversations yet. Start one, or join with an invite link.");

  // New conversation
  const titleId = uniqueId("conversation-title");
  const title = h("input", { id: titleId, name: "title", required: true, maxlength: 256, autocomplete: "off" });
  const groupId = uniqueId("conversation-group");
  const group = h("input", { id: groupId, type: "checkbox", name: "is_group" });
  const assistantId = uniqueId("conversation-assistant");
  const assistant = h("input", { id: assistantId, type: "checkbox", name: "assistant_replies", checked: true });
  let assistantTouched = false;
  assistant.addEventListener("change", () => (assistantTouched = true));
  group.addEventListener("change", () => {
    // The contract's default: the assistant answers in one-to-one conversations, not in groups.
    if (!assistantTouched) assistant.checked = !group.checked;
  });
  const createError = h("p", { class: "form-error", role: "alert" });
  const createForm = h(
    "form",
    {
      class: "stack-form",
      hidden: true,
      "aria-label": "New conversation",
      onsubmit: async (event) => {
        event.preventDefault();
        createError.textContent = "";
        try {
          await actions.create({
            title: title.value,
            is_group: group.checked,
            assistant_replies: assistant.checked,
          });
          createForm.reset();
          assistant.checked = true;
          assistantTouched = false;
          createForm.hidden = true;
          newButton.setAttribute("aria-expanded", "false");
        } catch (problem) {
          createError.textContent = problem.friendly || String(problem);
        }
      },
    },
    h("div", { class: "field" }, h("label", { for: titleId }, "Title"), title),
    h("div", { class: "check" }, group, h("label", { for: groupId }, "Group conversation")),
    h("div", { class: "check" }, assistant, h("label", { for: assistantId }, "The assistant answers every message")),
    createError,
    h("div", { class: "row" },
      h("button", { type: "submit", class: "primary" }, "Create"),
      h("button", { type: "button", onclick: () => toggleCreate(false) }, "Cancel")),
  );
  const newButton = h(
    "button",
    { type: "button", class: "primary wide", "aria-expanded": "false", onclick: () => toggleCreate(createForm.hidden) },
    "New conversation",
  );
  function toggleCreate(open) {
    createForm.hidden = !open;
    newButton.setAttribute("aria-expanded", String(open));
    if (open) title.focus();
    else newButton.focus();
  }

  // Join with an invite link
  const joinId = uniqueId("join");
  const joinInput = h("input", { id: joinId, name: "invite", required: true, autocomplete: "off",
    placeholder: "Paste an invite link" });
  const joinError = h("p", { class: "form-error", role: "alert" });
  const joinForm = h(
    "form",
    {
      class: "stack-form join-form",
      onsubmit: async (event) => {
        event.preventDefault();
        joinError.textContent = "";
        try {
          await actions.join(joinInput.value.trim());
          joinForm.reset();
        } catch (problem) {
          joinError.textContent = problem.friendly || String(problem);
        }
      },
    },
    h("div", { class: "field" }, h("label", { for: joinId }, "Join with an invite link"), joinInput),
    joinError,
    h("button", { type: "submit" }, "Join"),
  );

  const el = h(
    "nav",
    { class: "sidebar", "aria-label": "Conversations" },
    h("h2", { id: "conversations-title" }, "Conversations"),
    newButton,
    createForm,
    list,
    empty,
    joinForm,
  );

  function update(conversations, currentId) {
    empty.hidden = conversations.length > 0;
    syncList(
      list,
      conversations,
      (c) => c.id,
      () => {
        const name = h("span", { class: "name" });
        const badge = h("span", { class: "badge" });
        const link = h("a", { class: "conversation-link" }, name, badge);
        return h("li", {}, link);
      },
      (li, conversation) => {
        const link = li.firstChild;
        const [name, badge] = link.children;
        link.href = `#/c/${conversation.id}`;
        setText(name, conversation.title);
        const unread = conversation.unread_total;
        badge.hidden = !unread;
        setText(badge, unread > 99 ? "99+" : String(unread));
        link.setAttribute("aria-label", unread ? `${conversation.title}, ${unread} unread` : conversation.title);
        if (conversation.id === currentId) link.setAttribute("aria-current", "page");
        else link.removeAttribute("aria-current");
      },
    );
  }

  return { el, update };
}
