// The open conversation: its state, its one EventSource, its screen, and what the user can do in it.
//
// Opening: the stream opens first (live events queue), then the state is read over REST, then the queued
// events are applied on top; every change is idempotent, so the overlap counts once.

import { api } from "./api.js";
import { TypingNotifier } from "./presence.js";
import { ConversationState } from "./store.js";
import { ConversationStream } from "./stream.js";
import { ConversationScreen } from "./views/conversation.js";

const OPEN_WAIT_MS = 4000;
const MARK_READ_DELAY_MS = 300;

export class ConversationSession {
  constructor(app, conversationId) {
    this.app = app;
    this.state = new ConversationState(conversationId);
    this.state.onTreeChanged = (rootId) => rootId === this.threadId && this.render("pane");
    this.threadId = null;
    this.replyParentId = null;
    this.typingNotifier = new TypingNotifier();
    this.dirty = new Set();
    this.flushTimer = null;
    this.readTimer = null;
    this.typingTimer = setInterval(() => this.state.typing.size && this.render("typing"), 1000);
    this.stream = new ConversationStream(conversationId, {
      onEvent: (type, payload) => this.onEvent(type, payload),
      onStatus: (status) => app.setConnection(status),
      onResync: () => this.reload(),
      beforeReconnect: () =>
        this.refreshView().catch((error) => {
          if (error.status === 403) this.app.leftConversation(this.id);
          throw error;
        }),
    });
    this.screen = new ConversationScreen(this);
    this.onVisibility = () => document.visibilityState === "visible" && this.markReadSoon();
    document.addEventListener("visibilitychange", this.onVisibility);
  }

  get id() {
    return this.state.id;
  }

  async start() {
    this.stream.start();
    await Promise.race([this.stream.opened, new Promise((resolve) => setTimeout(resolve, OPEN_WAIT_MS))]);
    const liveBeforeLoad = this.stream.opens > 0;
    await this.reload();
    if (liveBeforeLoad) return;
    // The REST state was read before the stream was live: what happened in between must be read again,
    // now if the stream opened meanwhile, else as soon as it opens.
    if (this.stream.opens > 0) await this.reload();
    else this.stream.reloadOnOpen = true;
  }

  close() {
    document.removeEventListener("visibilitychange", this.onVisibility);
    this.stream.close();
    this.typingNotifier.stopped();
    clearInterval(this.typingTimer);
    clearTimeout(this.flushTimer);
    clearTimeout(this.readTimer);
  }

  /** Read the conversation over REST; stream events that come meanwhile wait and are applied after. */
  async reload() {
    const state = this.state;
    state.ready = false;
    try {
      const [view, threads, unread, presence] = await Promise.all([
        api.get(`/api/conversations/${this.id}`),
        api.get(`/api/conversations/${this.id}/threads?limit=50`),
        api.get(`/api/conversations/${this.id}/unread`),
        api.get(`/api/conversations/${this.id}/presence`).catch(() => ({ participants: [], typing: [] })),
      ]);
      state.view = view;
      this.app.rememberUsers(view.participants);
      state.mergeThreads(threads.threads);
      state.nextAfter = threads.next_after || null;
      state.unread = new Map(unread.threads.map((t) => [t.root_id, t.unread]));
      for (const update of presence.participants) state.setPresence(update);
      for (const update of presence.typing) state.setTyping(update);
      // Trees are read again when shown; the open one right after this.
      for (const rootId of [...state.trees.keys()]) {
        if (rootId === this.threadId) state.trees.get(rootId).loaded = false;
        else state.trees.delete(rootId);
      }
    } catch (error) {
      state.ready = true;
      if (error.status === 403) this.app.leftConversation(this.id);
      else this.app.toast(error.friendly || String(error));
      return;
    }
    state.ready = true;
    const pending = state.pending;
    state.pending = [];
    for (const [type, payload] of pending) this.applyEvent(type, payload);
    this.render("header", "threads", "pane", "typing");
    this.app.setUnread(this.id, state.unreadTotal());
    if (this.threadId) await this.loadThread(this.threadId);
  }

  /** Read the conversation and its members' presence again (members came or went; before a reconnect). */
  async refreshView() {
    const [view, presence] = await Promise.all([
      api.get(`/api/conversations/${this.id}`),
      api.get(`/api/conversations/${this.id}/presence`).catch(() => null),
    ]);
    this.state.view = view;
    // A newcomer's presence changed before they joined, so no presence.update told this stream about it.
    for (const update of presence?.participants || []) this.state.setPresence(update);
    this.app.rememberUsers(view.participants);
    this.render("header", "pane");
  }

  async loadOlderThreads() {
    if (!this.state.nextAfter) return;
    const page = await api.get(`/api/conversations/${this.id}/threads?limit=50&after=${encodeURIComponent(this.state.nextAfter)}`);
    this.state.mergeThreads(page.threads);
    this.state.nextAfter = page.next_after || null;
    this.render("threads");
  }

  /** Show a thread (rootId) or the new-thread composer (null). */
  async setThread(rootId) {
    if (rootId !== this.threadId) {
      this.typingNotifier.stopped();
      this.replyParentId = null;
    }
    this.threadId = rootId;
    this.render("threads", "pane", "typing");
    if (rootId && this.state.ready && !this.state.trees.get(rootId)?.loaded) await this.loadThread(rootId);
    else this.markReadSoon();
  }

  async loadThread(rootId) {
    try {
      await this.state.loadTree(api, rootId);
    } catch (error) {
      if (error.status === 404) this.app.toast("That thread does not exist.");
      else this.app.toast(error.friendly || String(error));
      return;
    }
    if (rootId === this.threadId) {
      this.render("pane");
      this.markReadSoon();
    }
  }

  onEvent(type, payload) {
    if (!this.state.ready) {
      this.state.pending.push([type, payload]);
      return;
    }
    this.applyEvent(type, payload);
  }

  applyEvent(type, payload) {
    const changed = this.state.apply(type, payload, this.app.me, api);
    if (changed.gone) {
      this.app.leftConversation(this.id);
      return;
    }
    if (changed.threads) this.render("threads");
    if (changed.tree && changed.tree === this.threadId) this.render("pane");
    if (changed.unread) {
      this.app.setUnread(this.id, this.state.unreadTotal());
      if (payload.root_id === this.threadId && payload.unread > 0) this.markReadSoon();
    }
    if (changed.members) this.refreshView().catch(() => {});
    if (changed.presence) this.render("header", "pane");
    if (changed.typing) this.render("typing");
    if (type === "message.created" && payload.author_user_id && !this.app.knowsUser(payload.author_user_id)) {
      this.app.fetchUser(payload.author_user_id).then(() => this.render("threads", "pane"));
    }
  }

  /** Coalesce renders: many events (assistant deltas) in a burst make one DOM update. */
  render(...parts) {
    for (const part of parts) this.dirty.add(part);
    if (this.flushTimer) return;
    this.flushTimer = setTimeout(() => {
      this.flushTimer = null;
      const dirty = this.dirty;
      this.dirty = new Set();
      if (dirty.has("header")) this.screen.renderHeader();
      if (dirty.has("threads")) this.screen.renderThreads();
      if (dirty.has("pane")) this.screen.renderThreadPane();
      if (dirty.has("typing")) this.screen.renderTyping();
    }, 16);
  }

  markReadSoon() {
    clearTimeout(this.readTimer);
    this.readTimer = setTimeout(() => {
      const rootId = this.threadId;
      if (!rootId || document.visibilityState === "hidden") return;
      if (!(this.state.unread.get(rootId) > 0)) return;
      api.post(`/api/threads/${rootId}/read`, {}).catch(() => {});
    }, MARK_READ_DELAY_MS);
  }

  // ---- what the user may do ------------------------------------------------------------------------------

  canWrite() {
    const role = this.state.view?.role;
    return role === "owner" || role === "admin" || role === "member";
  }

  canModerate() {
    const role = this.state.view?.role;
    return role === "owner" || role === "admin";
  }

  presenceOf(userId) {
    if (userId === this.app.me.id) return this.app.ownPresence();
    return this.state.presence.get(userId)?.status || "offline";
  }

  authorName(message) {
    return message.author_user_id ? this.app.userName(message.author_user_id) : "Assistant";
  }

  replyParent() {
    const tree = this.threadId && this.state.trees.get(this.threadId);
    return tree ? tree.messages.get(this.replyParentId || this.threadId) || null : null;
  }

  replyTo(message) {
    this.replyParentId = message ? message.id : null;
    this.render("pane");
    setTimeout(() => this.screen.compose.focus(), 20);
  }

  typing(text) {
    if (!this.canWrite()) return;
    if (text.trim()) this.typingNotifier.typing(this.id, this.threadId);
    else this.typingNotifier.stopped();
  }

  async submit(content) {
    await this.typingNotifier.settled();
    if (this.threadId) {
      const parent = this.replyParentId || this.threadId;
      await api.post(`/api/messages/${parent}/reply`, { content });
      this.typingNotifier.sent();
      this.replyParentId = null;
      this.render("pane");
      // Without the stream the post would only show on its return; read the thread instead.
      if (this.stream.status !== "live") await this.loadThread(this.threadId);
    } else {
      const posted = await api.post(`/api/threads/${this.id}/root`, { content });
      this.typingNotifier.sent();
      location.hash = `#/c/${this.id}/t/${posted.root_id}`;
    }
  }

  edit(message, content) {
    return api.post(`/api/messages/${message.id}/edit`, { content });
  }

  remove(message) {
    return api.post(`/api/messages/${message.id}/delete`, {}).catch((e) => this.app.toast(e.friendly));
  }

  restore(message) {
    return api.post(`/api/messages/${message.id}/restore`).catch((e) => this.app.toast(e.friendly));
  }

  stop(message) {
    return api.post(`/api/messages/${message.id}/cancel`).catch((e) => this.app.toast(e.friendly));
  }

  async addByUsername(username, role) {
    const found = await api.get(`/api/users?query=${encodeURIComponent(username)}&limit=100`);
    const user = found.users.find((u) => u.username.toLowerCase() === username.toLowerCase());
    if (!user) throw Object.assign(new Error(`No user is called ${username}.`), { friendly: `No user is called “${username}”.` });
    await api.post(`/api/conversations/${this.id}/participants`, { user_id: user.id, role });
    await this.refreshView();
    return user;
  }

  async createInvite(email, role) {
    const invite = await api.post(`/api/conversations/${this.id}/invites`, { email, role });
    return { link: `${location.origin}/#/invite/${invite.token}`, expiresAt: invite.expires_at };
  }
}
