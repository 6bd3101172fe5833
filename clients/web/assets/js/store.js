// The state of the open conversation and how each stream event changes it. Every change is idempotent, so
// an event that overlaps a REST load (the stream opens first, then the page reads the state) counts once.

const NO_MORE_DELTAS = Number.POSITIVE_INFINITY;

export class ThreadTree {
  constructor(rootId) {
    this.rootId = rootId;
    this.messages = new Map(); // id -> MessageView (+ finish_reason once done)
    this.nextIdx = new Map(); // id -> the next delta idx to append, for streaming assistant messages
    this.loaded = false;
    this.pending = []; // events that came while the tree was loading
    this.chunkFetches = new Set();
    this.loads = 0; // the newest load wins; an older one that finishes later is dropped
  }

  /** Messages in path order: a pre-order walk of the reply tree (contract 1.2). */
  ordered() {
    return [...this.messages.values()].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  }
}

export class ConversationState {
  constructor(id) {
    this.id = id;
    this.view = null; // ConversationView
    this.threads = new Map(); // root_id -> ThreadSummary
    this.nextAfter = null;
    this.unread = new Map(); // root_id -> count
    this.presence = new Map(); // user_id -> {status, last_seen_at}
    this.typing = new Map(); // "user/root" -> {user_id, root_id, expiresMs}
    this.trees = new Map(); // root_id -> ThreadTree
    this.ready = false;
    this.pending = []; // events that came before the first REST load finished
  }

  unreadTotal() {
    let total = 0;
    for (const count of this.unread.values()) total += count;
    return total;
  }

  sortedThreads() {
    return [...this.threads.values()].sort((a, b) =>
      a.last_activity_at !== b.last_activity_at
        ? a.last_activity_at < b.last_activity_at
          ? 1
          : -1
        : a.root_id < b.root_id
          ? 1
          : -1,
    );
  }

  /** Merge a page of the thread list: a summary already updated by events is newer than the page. */
  mergeThreads(summaries) {
    for (const summary of summaries) {
      const known = this.threads.get(summary.root_id);
      if (!known || known.last_activity_at <= summary.last_activity_at) this.threads.set(summary.root_id, summary);
    }
  }

  setPresence(update) {
    this.presence.set(update.user_id, { status: update.status, last_seen_at: update.last_seen_at });
  }

  setTyping(update) {
    const key = `${update.user_id}/${update.root_id || "-"}`;
    const expiresMs = Date.parse(update.expires_at);
    if (!(expiresMs > Date.now())) this.typing.delete(key);
    else this.typing.set(key, { user_id: update.user_id, root_id: update.root_id || null, expiresMs });
  }

  /** Live typers (other than me) at rootId (null: a new thread), or anywhere when rootId is undefined. */
  typers(meId, rootId) {
    const now = Date.now();
    const users = [];
    for (const [key, entry] of this.typing) {
      if (entry.expiresMs <= now) {
        this.typing.delete(key);
        continue;
      }
      if (entry.user_id === meId) continue;
      if (rootId !== undefined && entry.root_id !== rootId) continue;
      if (!users.includes(entry.user_id)) users.push(entry.user_id);
    }
    return users;
  }

  /** Load a thread's tree over REST (every page), then the text so far of messages still streaming. */
  async loadTree(api, rootId) {
    const tree = this.trees.get(rootId) || new ThreadTree(rootId);
    this.trees.set(rootId, tree);
    tree.loaded = false;
    const load = ++tree.loads;
    let cursor = null;
    const messages = [];
    for (let page = 0; page < 20; page += 1) {
      const query = cursor ? `limit=1000&cursor_path=${cursor}` : "limit=1000";
      const response = await api.get(`/api/threads/${rootId}/tree?${query}`);
      messages.push(...response.messages);
      cursor = response.next_cursor;
      if (!cursor) break;
    }
    if (load !== tree.loads) return tree; // a newer load started after this one read; it will finish
    tree.messages.clear();
    tree.nextIdx.clear();
    for (const message of messages) {
      tree.messages.set(message.id, message);
      tree.nextIdx.set(message.id, NO_MORE_DELTAS);
    }
    await Promise.all(
      messages.filter((m) => m.status === "streaming").map((m) => this.fetchChunks(api, tree, m.id)),
    );
    if (load !== tree.loads) return tree;
    tree.loaded = true;
    const pending = tree.pending;
    tree.pending = [];
    for (const [type, payload] of pending) this.applyToTree(tree, type, payload, api);
    return tree;
  }

  /** Rebuild a streaming message's text from its chunks; later deltas continue after the last idx. */
  async fetchChunks(api, tree, messageId) {
    const chunks = await api.get(`/api/messages/${messageId}/chunks?limit=1000`);
    const message = tree.messages.get(messageId);
    if (!message || message.status !== "streaming") return;
    const known = tree.nextIdx.get(messageId) ?? 0;
    const fetched = chunks.length ? chunks[chunks.length - 1].idx + 1 : 0;
    if (known !== NO_MORE_DELTAS && known >= fetched) return;
    message.content = chunks.map((chunk) => chunk.content).join("");
    tree.nextIdx.set(messageId, fetched);
  }

  /**
   * Apply one stream event. Returns what to re-render: {threads, tree: rootId, members, unread, gone}.
   */
  apply(type, payload, me, api) {
    const changed = {};
    switch (type) {
      case "thread.new":
        if (!this.threads.has(payload.root_id)) this.threads.set(payload.root_id, payload.summary);
        changed.threads = true;
        break;
      case "thread.activity": {
        const summary = this.threads.get(payload.root_id);
        if (summary && summary.last_activity_at < payload.last_activity_at) {
          summary.last_activity_at = payload.last_activity_at;
        }
        changed.threads = true;
        break;
      }
      case "message.created": {
        const summary = this.threads.get(payload.root_id);
        // The summary counts every message up to its last_activity_at; a later one is new to it.
        if (summary && payload.created_at > summary.last_activity_at) {
          summary.message_count += 1;
          summary.last_activity_at = payload.created_at;
        }
        changed.threads = true;
        changed.tree = this.routeToTree(type, payload, api);
        break;
      }
      case "message.updated": {
        const summary = this.threads.get(payload.root_id);
        if (summary && payload.id === payload.root_id) {
          summary.root_excerpt = payload.deleted_at ? "" : payload.content.trim().slice(0, 240);
          changed.threads = true;
        }
        changed.tree = this.routeToTree(type, payload, api);
        break;
      }
      case "message.delta":
      case "message.done":
      case "error":
        changed.tree = this.routeToTree(type, payload, api);
        break;
      case "unread.update":
        this.unread.set(payload.root_id, payload.unread);
        changed.unread = true;
        changed.threads = true;
        break;
      case "membership.changed":
        if (payload.user_id === me.id && payload.action === "removed") changed.gone = true;
        changed.members = true;
        break;
      case "presence.update":
        this.setPresence(payload);
        changed.presence = true;
        break;
      case "typing.update":
        this.setTyping(payload);
        changed.typing = true;
        break;
      default:
        break;
    }
    return changed;
  }

  routeToTree(type, payload, api) {
    const rootId = payload.root_id;
    const tree = rootId && this.trees.get(rootId);
    if (!tree) return null;
    if (!tree.loaded) {
      tree.pending.push([type, payload]);
      return null;
    }
    this.applyToTree(tree, type, payload, api);
    return rootId;
  }

  applyToTree(tree, type, payload, api) {
    if (type === "message.created") {
      if (!tree.messages.has(payload.id)) {
        tree.messages.set(payload.id, { ...payload });
        tree.nextIdx.set(payload.id, payload.status === "streaming" ? 0 : NO_MORE_DELTAS);
      }
    } else if (type === "message.updated") {
      const known = tree.messages.get(payload.id);
      tree.messages.set(payload.id, { ...payload, finish_reason: known?.finish_reason });
      if (payload.status !== "streaming") tree.nextIdx.set(payload.id, NO_MORE_DELTAS);
    } else if (type === "message.delta") {
      const message = tree.messages.get(payload.message_id);
      if (!message) return;
      const expected = tree.nextIdx.get(payload.message_id) ?? 0;
      if (payload.idx < expected) return; // already in the text
      if (payload.idx > expected) {
        // A delta was dropped on the way (slow consumer, 6.8): the chunks have every piece.
        this.refetchChunks(api, tree, payload.message_id);
        return;
      }
      message.content += payload.choices?.[0]?.delta?.content || "";
      tree.nextIdx.set(payload.message_id, payload.idx + 1);
    } else if (type === "message.done") {
      const message = tree.messages.get(payload.message_id);
      if (message) message.finish_reason = payload.finish_reason;
    } else if (type === "error") {
      const message = tree.messages.get(payload.message_id);
      if (message) message.error = payload.message;
    }
  }

  refetchChunks(api, tree, messageId) {
    if (tree.chunkFetches.has(messageId)) return;
    tree.chunkFetches.add(messageId);
    this.fetchChunks(api, tree, messageId)
      .catch(() => {})
      .finally(() => {
        tree.chunkFetches.delete(messageId);
        this.onTreeChanged?.(tree.rootId);
      });
  }
}
