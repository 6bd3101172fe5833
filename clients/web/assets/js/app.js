// The page: who is signed in, the hash routes, the conversation list, and the open conversation.
//
// Routes: #/ (home), #/c/<conversation>, #/c/<conversation>/t/<thread root>, #/invite/<token>.

import { api, setCsrfFallback, setUnauthorizedHandler } from "./api.js";
import { h, setChildren, setText } from "./dom.js";
import { Heartbeat } from "./presence.js";
import { ConversationSession } from "./session.js";
import { renderAuth } from "./views/auth.js";
import { presenceDot } from "./views/presence_dot.js";
import { createSidebar } from "./views/sidebar.js";

const LIST_REFRESH_MS = 20000;
const UUID = "[0-9a-fA-F-]{36}";
const CONNECTION_TEXT = { connecting: "connecting…", live: "live", reconnecting: "reconnecting…" };

function parseRoute(hash) {
  let match = hash.match(new RegExp(`^#/c/(${UUID})(?:/t/(${UUID}))?$`));
  if (match) return { name: "conversation", conversationId: match[1].toLowerCase(), threadId: match[2]?.toLowerCase() || null };
  match = hash.match(/^#\/invite\/([A-Za-z0-9_-]+)$/);
  if (match) return { name: "invite", token: match[1] };
  return { name: "home" };
}

export class App {
  constructor(root) {
    this.root = root;
    this.me = null;
    this.users = new Map(); // user id -> UserPublic
    this.userFetches = new Map();
    this.conversations = [];
    this.session = null;
    this.heartbeat = new Heartbeat();
    this.listTimer = null;
    this.connection = null;
    window.addEventListener("hashchange", () => this.route());
    window.addEventListener("focus", () => this.me && this.refreshConversations());
    setUnauthorizedHandler(() => this.signedOut("Your session ended. Sign in again."));
  }

  async boot() {
    try {
      const setup = await api.get("/api/setup");
      if (!setup.is_setup) return this.showAuth("setup");
      const me = await api.get("/api/auth/me");
      this.signedIn(me.user);
    } catch (error) {
      if (error.status === 401) this.showAuth("login");
      else this.showMessage("Threadline is not reachable", error.friendly || String(error), () => this.boot());
    }
  }

  // ---- signing in and out ---------------------------------------------------------------------------------

  showAuth(mode, notice) {
    this.stopApp();
    const route = parseRoute(location.hash);
    const inviteNote = route.name === "invite" ? "Sign in or create an account to accept your invite." : null;
    const main = h("main", { id: "main", class: "auth", tabindex: "-1" },
      renderAuth(mode, {
        submit: (m, data) => this.authSubmit(m, data),
        switchTo: (m) => this.showAuth(m),
      }, notice || inviteNote));
    setChildren(this.root, main);
    document.title = "Threadline";
    main.querySelector("input")?.focus();
  }

  async authSubmit(mode, data) {
    if (mode === "setup") await api.post("/api/setup", data);
    if (mode === "register") await api.post("/api/auth/register", data);
    const identifier = mode === "login" ? data.email : data.username;
    const login = await api.post("/api/auth/login", { email: identifier, password: data.password });
    this.signedIn(login.user, login.csrf_token);
  }

  signedIn(user, csrfToken) {
    this.me = user;
    if (csrfToken) setCsrfFallback(csrfToken);
    this.rememberUsers([{ user_id: user.id, username: user.username, display_name: user.display_name }]);
    this.renderShell();
    this.heartbeat.start();
    this.refreshConversations();
    this.listTimer = setInterval(() => this.refreshConversations(), LIST_REFRESH_MS);
    this.route();
  }

  async signOut() {
    try {
      await api.post("/api/auth/logout");
    } catch {
      // signed out either way
    }
    this.signedOut();
  }

  signedOut(notice) {
    if (!this.me) return;
    this.me = null;
    setCsrfFallback(null);
    this.showAuth("login", notice);
  }

  stopApp() {
    this.session?.close();
    this.session = null;
    this.heartbeat.stop();
    clearInterval(this.listTimer);
  }

  // ---- the shell ------------------------------------------------------------------------------------------

  renderShell() {
    this.connection = h("p", { class: "connection", role: "status", "aria-live": "polite" });
    this.toastBox = h("p", { class: "toast", role: "alert", hidden: true });
    const name = this.me.display_name || this.me.username;
    this.sidebar = createSidebar({
      create: (body) => this.createConversation(body),
      join: (link) => this.join(link),
    });
    this.main = h("main", { id: "main", class: "content", tabindex: "-1" });
    setChildren(
      this.root,
      h("a", { class: "skip-link", href: "#main", onclick: (event) => {
        event.preventDefault();
        this.main.focus();
      } }, "Skip to content"),
      h("header", { class: "topbar" },
        h("a", { class: "brand", href: "#/" }, "Threadline"),
        this.connection,
        h("div", { class: "me" },
          presenceDot("online"),
          h("span", { class: "me-name" }, name),
          h("button", { type: "button", onclick: () => this.signOut() }, "Sign out"))),
      this.toastBox,
      h("div", { class: "layout" }, this.sidebar.el, this.main),
    );
  }

  setConnection(status) {
    if (!this.connection) return;
    this.connection.dataset.state = status;
    setText(this.connection, status ? CONNECTION_TEXT[status] : "");
  }

  toast(text) {
    if (!this.toastBox) return;
    setText(this.toastBox, text);
    this.toastBox.hidden = false;
    clearTimeout(this.toastTimer);
    this.toastTimer = setTimeout(() => (this.toastBox.hidden = true), 6000);
  }

  showMessage(title, text, retry) {
    setChildren(this.root, h("main", { id: "main", class: "auth" },
      h("section", { class: "auth-card" }, h("h1", {}, title), h("p", {}, text),
        retry ? h("button", { type: "button", class: "primary", onclick: retry }, "Try again") : null)));
  }

  // ---- routes ---------------------------------------------------------------------------------------------

  async route() {
    if (!this.me) return;
    const route = parseRoute(location.hash);
    if (route.name === "conversation") return this.openConversation(route.conversationId, route.threadId);
    this.closeConversation();
    if (route.name === "invite") return this.showInvite(route.token);
    document.title = "Threadline";
    setChildren(this.main, h("section", { class: "home" },
      h("h2", {}, `Hello, ${this.me.display_name || this.me.username}`),
      h("p", {}, "Pick a conversation on the left, start a new one, or join one with an invite link.")));
    this.renderList();
  }

  closeConversation() {
    if (!this.session) return;
    this.session.close();
    this.session = null;
    this.setConnection(null);
  }

  async openConversation(conversationId, threadId) {
    if (this.session?.id !== conversationId) {
      this.closeConversation();
      const session = new ConversationSession(this, conversationId);
      this.session = session;
      setChildren(this.main, session.screen.el);
      session.setThread(threadId);
      this.renderList();
      await session.start();
      if (session === this.session) {
        const title = session.state.view?.title;
        document.title = title ? `${title} · Threadline` : "Threadline";
      }
    } else {
      await this.session.setThread(threadId);
      this.renderList();
    }
    // Keyboard and screen-reader users land on the thread they opened, unless they are writing (a new
    // thread's first message just took them there).
    const screen = this.session?.id === conversationId ? this.session.screen : null;
    if (threadId && screen && !screen.compose.el.contains(document.activeElement)) {
      screen.threadTitle.focus({ preventScroll: true });
    }
  }

  showInvite(token) {
    const error = h("p", { class: "form-error", role: "alert" });
    const accept = h("button", { type: "button", class: "primary", onclick: async () => {
      accept.disabled = true;
      error.textContent = "";
      try {
        const joined = await api.post("/api/invites/accept", { token });
        await this.refreshConversations();
        location.hash = `#/c/${joined.conversation_id}`;
      } catch (problem) {
        error.textContent = problem.status === 404 ? "This invite link is not valid." : problem.friendly;
        accept.disabled = false;
      }
    } }, "Accept invite");
    const card = h("section", { class: "invite-card", "aria-labelledby": "invite-title" },
      h("h2", { id: "invite-title", tabindex: "-1" }, "You are invited to a conversation"),
      h("p", {}, "Accept to join it and see its threads."),
      error,
      h("div", { class: "row" }, accept, h("a", { class: "button", href: "#/" }, "Not now")));
    setChildren(this.main, card);
    accept.focus();
  }

  // ---- conversations --------------------------------------------------------------------------------------

  async refreshConversations() {
    try {
      const list = await api.get("/api/conversations");
      this.conversations = list.conversations;
      this.renderList();
    } catch {
      // the next refresh tries again
    }
  }

  renderList() {
    if (!this.sidebar) return;
    const open = this.session;
    const conversations = this.conversations.map((c) =>
      open && c.id === open.id && open.state.ready ? { ...c, unread_total: open.state.unreadTotal() } : c,
    );
    this.sidebar.update(conversations, open?.id || null);
  }

  setUnread(conversationId, total) {
    const known = this.conversations.find((c) => c.id === conversationId);
    if (known) known.unread_total = total;
    this.renderList();
  }

  async createConversation(body) {
    const created = await api.post("/api/conversations", body);
    await this.refreshConversations();
    location.hash = `#/c/${created.conversation_id}`;
  }

  async join(link) {
    const token = link.includes("#/invite/") ? link.split("#/invite/")[1] : link;
    const joined = await api.post("/api/invites/accept", { token: token.trim() });
    await this.refreshConversations();
    location.hash = `#/c/${joined.conversation_id}`;
  }

  leftConversation(conversationId) {
    this.conversations = this.conversations.filter((c) => c.id !== conversationId);
    if (this.session?.id === conversationId) {
      this.toast("You are no longer in that conversation.");
      location.hash = "#/";
    }
    this.refreshConversations();
  }

  // ---- people ---------------------------------------------------------------------------------------------

  rememberUsers(participants) {
    for (const p of participants) {
      this.users.set(p.user_id, { id: p.user_id, username: p.username, display_name: p.display_name });
    }
  }

  knowsUser(userId) {
    return this.users.has(userId);
  }

  userName(userId) {
    if (!userId) return "Someone";
    const user = this.users.get(userId);
    if (user) return user.display_name || user.username;
    this.fetchUser(userId).then(() => this.session?.render("threads", "pane", "typing"));
    return "…";
  }

  fetchUser(userId) {
    if (!this.userFetches.has(userId)) {
      this.userFetches.set(
        userId,
        api.get(`/api/users/${userId}`).then(
          (user) => this.users.set(userId, user),
          () => this.users.set(userId, { id: userId, username: "unknown user" }),
        ),
      );
    }
    return this.userFetches.get(userId);
  }

  ownPresence() {
    return document.visibilityState === "hidden" ? "away" : "online";
  }
}
