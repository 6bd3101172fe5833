// The open conversation: its header (title, members with presence, invites), the thread list and the
// thread pane (the reply tree and the compose box).

import { formatTime, h, setChildren, setText, syncList, uniqueId } from "../dom.js";
import { createCompose } from "./compose.js";
import { presenceDot } from "./presence_dot.js";
import { createThreadView } from "./thread.js";

function field(labelText, input) {
  const id = uniqueId("field");
  input.id = id;
  return h("div", { class: "field" }, h("label", { for: id }, labelText), input);
}

function roleSelect() {
  return h("select", { name: "role" },
    h("option", { value: "member" }, "Member"),
    h("option", { value: "admin" }, "Admin"),
    h("option", { value: "viewer" }, "Viewer"));
}

/** session: the ConversationSession that owns the data and the actions. */
export class ConversationScreen {
  constructor(session) {
    this.session = session;
    const id = session.state.id;

    this.title = h("h2", { id: "conversation-title", tabindex: "-1" });
    this.tags = h("p", { class: "tags" });
    this.members = h("ul", { class: "members", "aria-label": "Members" });
    this.inviteButton = h("button", { type: "button", "aria-expanded": "false", "aria-controls": "invite-panel",
      onclick: () => this.toggleInvite() }, "Invite people");
    this.invitePanel = this.buildInvitePanel();

    this.threadList = h("ul", { class: "thread-list", "aria-labelledby": "threads-title" });
    this.threadsEmpty = h("p", { class: "muted empty" }, "No threads yet.");
    this.olderButton = h("button", { type: "button", hidden: true, onclick: () => session.loadOlderThreads() },
      "Older threads");

    this.threadTitle = h("h3", { id: "thread-title", tabindex: "-1" });
    this.threadIntro = h("p", { class: "muted" });
    this.backLink = h("a", { class: "back", href: `#/c/${id}` }, "← All threads");
    this.tree = createThreadView({
      me: () => session.app.me,
      name: (userId) => session.app.userName(userId),
      presence: (userId) => session.presenceOf(userId),
      canWrite: () => session.canWrite(),
      canModerate: () => session.canModerate(),
      reply: (message) => session.replyTo(message),
      edit: (message, content) => session.edit(message, content),
      remove: (message) => session.remove(message),
      restore: (message) => session.restore(message),
      stop: (message) => session.stop(message),
    });
    this.compose = createCompose({
      submit: (text) => session.submit(text),
      typing: (text) => session.typing(text),
      cancelReply: () => session.replyTo(null),
    });

    this.el = h(
      "section",
      { class: "conversation", "aria-labelledby": "conversation-title" },
      h("header", { class: "conversation-header" },
        h("div", { class: "title-row" }, h("div", {}, this.title, this.tags), this.inviteButton),
        this.members),
      this.invitePanel,
      h("div", { class: "conversation-body" },
        h("section", { class: "threads", "aria-labelledby": "threads-title" },
          h("div", { class: "section-head" },
            h("h3", { id: "threads-title" }, "Threads"),
            h("a", { class: "button", href: `#/c/${id}` }, "New thread")),
          this.threadList, this.threadsEmpty, this.olderButton),
        h("section", { class: "thread-pane", "aria-labelledby": "thread-title" },
          h("div", { class: "section-head" }, this.threadTitle, this.backLink),
          this.threadIntro,
          this.tree.el,
          this.compose.el)),
    );
  }

  buildInvitePanel() {
    const status = h("p", { class: "invite-status", role: "status" });
    const error = h("p", { class: "form-error", role: "alert" });
    const username = h("input", { name: "username", required: true, autocomplete: "off" });
    const addRole = roleSelect();
    const addForm = h(
      "form",
      { class: "stack-form", onsubmit: async (event) => {
        event.preventDefault();
        status.textContent = error.textContent = "";
        try {
          const user = await this.session.addByUsername(username.value.trim(), addRole.value);
          status.textContent = `${user.username} was added.`;
          addForm.reset();
        } catch (problem) {
          error.textContent = problem.friendly || String(problem);
        }
      } },
      h("h3", {}, "Add someone by username"),
      h("div", { class: "row" }, field("Username", username), field("Role", addRole)),
      h("button", { type: "submit" }, "Add to conversation"),
    );
    const email = h("input", { name: "email", type: "email", required: true, autocomplete: "off" });
    const linkRole = roleSelect();
    const linkOutput = h("input", { readonly: true, class: "invite-link" });
    const copy = h("button", { type: "button", onclick: async () => {
      linkOutput.select();
      try {
        await navigator.clipboard.writeText(linkOutput.value);
        status.textContent = "Invite link copied.";
      } catch {
        status.textContent = "Select the link and copy it.";
      }
    } }, "Copy link");
    const linkBox = h("div", { class: "link-box", hidden: true }, field("Invite link", linkOutput), copy);
    const linkForm = h(
      "form",
      { class: "stack-form", onsubmit: async (event) => {
        event.preventDefault();
        status.textContent = error.textContent = "";
        try {
          const invite = await this.session.createInvite(email.value.trim(), linkRole.value);
          linkOutput.value = invite.link;
          linkBox.hidden = false;
          status.textContent = "Invite link created: send it to the person you invite. One person can use it, " +
            `until ${new Date(invite.expiresAt).toLocaleString([], { dateStyle: "medium", timeStyle: "short" })}.`;
          linkOutput.focus();
          linkOutput.select();
        } catch (problem) {
          error.textContent = problem.friendly || String(problem);
        }
      } },
      h("h3", {}, "Create an invite link"),
      h("div", { class: "row" }, field("Their email (a note for you)", email), field("Role", linkRole)),
      h("button", { type: "submit" }, "Create invite link"),
      linkBox,
    );
    return h("div", { id: "invite-panel", class: "invite-panel", hidden: true, role: "region",
      "aria-label": "Invite people" }, addForm, linkForm, error, status);
  }

  toggleInvite() {
    const open = this.invitePanel.hidden;
    this.invitePanel.hidden = !open;
    this.inviteButton.setAttribute("aria-expanded", String(open));
    if (open) this.invitePanel.querySelector("input")?.focus();
  }

  renderHeader() {
    const view = this.session.state.view;
    if (!view) return;
    setText(this.title, view.title);
    const tags = [view.is_group ? "group" : "one-to-one", `you: ${view.role}`];
    if (view.assistant_replies) tags.push("assistant on");
    setChildren(this.tags, tags.map((tag) => h("span", { class: "tag" }, tag)));
    const manager = view.role === "owner" || view.role === "admin";
    this.inviteButton.hidden = !manager;
    if (!manager) this.invitePanel.hidden = true;
    this.renderMembers();
  }

  renderMembers() {
    const view = this.session.state.view;
    if (!view) return;
    syncList(
      this.members,
      view.participants,
      (p) => p.user_id,
      () => h("li", {}),
      (li, participant) => {
        const status = this.session.presenceOf(participant.user_id);
        const name = participant.display_name || participant.username;
        const role = participant.role === "member" ? "" : ` (${participant.role})`;
        const signature = `${status}|${name}|${role}`;
        if (li.dataset.signature === signature) return;
        li.dataset.signature = signature;
        li.replaceChildren(presenceDot(status), h("span", {}, name + role));
      },
    );
  }

  renderThreads() {
    const state = this.session.state;
    const threads = state.sortedThreads();
    this.threadsEmpty.hidden = threads.length > 0;
    this.olderButton.hidden = !state.nextAfter;
    const current = this.session.threadId;
    const typingRoots = new Set();
    for (const entry of state.typing.values()) {
      if (entry.user_id !== this.session.app.me.id && entry.root_id && entry.expiresMs > Date.now()) {
        typingRoots.add(entry.root_id);
      }
    }
    syncList(
      this.threadList,
      threads,
      (t) => t.root_id,
      () => h("li", {}, h("a", { class: "thread-link" },
        h("span", { class: "excerpt" }),
        h("span", { class: "meta" }),
        h("span", { class: "typing-mark", hidden: true }, "typing…"),
        h("span", { class: "badge", hidden: true }))),
      (li, thread) => {
        const link = li.firstChild;
        const [excerpt, meta, typingMark, badge] = link.children;
        link.href = `#/c/${state.id}/t/${thread.root_id}`;
        const text = thread.root_excerpt || "This message was deleted.";
        setText(excerpt, text.length > 120 ? `${text.slice(0, 120)}…` : text);
        excerpt.classList.toggle("deleted", !thread.root_excerpt);
        const author = thread.root_author ? this.session.app.userName(thread.root_author) : "Assistant";
        const count = thread.message_count;
        setText(meta, `${author} · ${count} message${count === 1 ? "" : "s"} · ${formatTime(thread.last_activity_at)}`);
        typingMark.hidden = !typingRoots.has(thread.root_id);
        const unread = state.unread.get(thread.root_id) || 0;
        badge.hidden = !unread;
        setText(badge, String(unread));
        link.setAttribute("aria-label", `${text.slice(0, 80)}, by ${author}, ${count} messages` +
          (unread ? `, ${unread} unread` : ""));
        if (thread.root_id === current) link.setAttribute("aria-current", "page");
        else link.removeAttribute("aria-current");
      },
    );
  }

  renderThreadPane() {
    const session = this.session;
    const view = session.state.view;
    const rootId = session.threadId;
    const tree = rootId ? session.state.trees.get(rootId) : null;
    this.backLink.hidden = !rootId;
    if (!rootId) {
      setText(this.threadTitle, "New thread");
      setText(this.threadIntro, "Start a thread: write the first message below.");
      this.threadIntro.hidden = false;
      this.tree.update([]);
    } else if (!tree || !tree.loaded) {
      setText(this.threadTitle, "Thread");
      setText(this.threadIntro, "Loading…");
      this.threadIntro.hidden = false;
    } else {
      setText(this.threadTitle, "Thread");
      this.threadIntro.hidden = true;
      // Follow new messages while the reader is at the end of the thread; a new thread starts at the end.
      const list = this.tree.el;
      const opened = list.dataset.root !== rootId;
      const atEnd = list.scrollHeight - list.scrollTop - list.clientHeight < 80;
      this.tree.update(tree.ordered());
      list.dataset.root = rootId;
      if (opened || atEnd) list.scrollTop = list.scrollHeight;
    }
    const parent = session.replyParent();
    this.compose.setContext({
      labelText: rootId ? "Reply" : "First message of a new thread",
      assistant: Boolean(view?.assistant_replies),
      replyTo: parent && parent.id !== rootId ? session.authorName(parent) : null,
      canWrite: session.canWrite(),
    });
  }

  renderTyping() {
    const session = this.session;
    const users = session.state.typers(session.app.me.id, session.threadId || null);
    const names = users.map((id) => session.app.userName(id));
    const text =
      names.length === 0 ? "" :
      names.length === 1 ? `${names[0]} is typing…` :
      names.length === 2 ? `${names[0]} and ${names[1]} are typing…` : "Several people are typing…";
    this.compose.setTypers(text);
    this.renderThreads();
  }
}
