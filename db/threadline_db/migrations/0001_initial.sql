-- 0001: the whole data model of contract v1.
-- Forward only: never edit this file once it has landed; add 0002_... instead.

CREATE EXTENSION IF NOT EXISTS ltree;

-- Users and global roles (contract 3.1). Every user holds 'member'.
CREATE TABLE users (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    username      text NOT NULL CHECK (username ~ '^[A-Za-z0-9_.-]{3,32}$'),
    email         text NOT NULL CHECK (char_length(email) BETWEEN 3 AND 254),
    display_name  text CHECK (display_name IS NULL OR char_length(display_name) BETWEEN 1 AND 64),
    password_hash text NOT NULL,
    roles         text[] NOT NULL DEFAULT ARRAY['member']
                  CHECK (roles <@ ARRAY['admin', 'member', 'read_only'] AND 'member' = ANY (roles)),
    disabled_at   timestamptz,
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX users_username_lower_key ON users (lower(username));
CREATE UNIQUE INDEX users_email_lower_key ON users (lower(email));

-- Sessions (contract 3.5): the token is stored as its SHA-256 only.
CREATE TABLE sessions (
    id                  uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id             uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token_hash          bytea NOT NULL UNIQUE,
    issued_at           timestamptz NOT NULL,
    expires_at          timestamptz NOT NULL,
    absolute_expires_at timestamptz NOT NULL,
    last_seen_at        timestamptz,
    revoked_at          timestamptz,
    revoked_reason      text CHECK (revoked_reason IN (
                            'logout', 'refresh', 'rotated', 'max_sessions',
                            'idle_expired', 'absolute_expired', 'user_disabled')),
    successor_id        uuid REFERENCES sessions (id),
    -- Wall-clock time of an implicit rotation: requests that arrived before it still run under this session.
    rotated_wall_at     timestamptz,
    CHECK (expires_at <= absolute_expires_at),
    CHECK ((revoked_at IS NULL) = (revoked_reason IS NULL))
);
CREATE INDEX sessions_live_by_user ON sessions (user_id, issued_at) WHERE revoked_at IS NULL;

-- Conversations (contract 4.1). last_seq is the event counter (6.4); pruned_seq/pruned_at the prune
-- horizon (6.6): the highest removed sequence number and that event's created_at.
CREATE TABLE conversations (
    id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    title             text NOT NULL CHECK (char_length(title) BETWEEN 1 AND 256),
    is_group          boolean NOT NULL DEFAULT false,
    assistant_replies boolean NOT NULL,
    created_by        uuid NOT NULL REFERENCES users (id),
    created_at        timestamptz NOT NULL DEFAULT now(),
    last_activity_at  timestamptz NOT NULL DEFAULT now(),
    last_seq          bigint NOT NULL DEFAULT 0 CHECK (last_seq >= 0),
    pruned_seq        bigint NOT NULL DEFAULT 0 CHECK (pruned_seq >= 0 AND pruned_seq <= last_seq),
    pruned_at         timestamptz
);

-- Memberships (contract 4.3). A row per membership; joining again starts a new row.
CREATE TABLE participants (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    conversation_id uuid NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    user_id         uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role            text NOT NULL CHECK (role IN ('owner', 'admin', 'member', 'viewer')),
    joined_at       timestamptz NOT NULL DEFAULT now(),
    left_at         timestamptz,
    CHECK (left_at IS NULL OR left_at >= joined_at)
);
CREATE UNIQUE INDEX participants_active_key ON participants (conversation_id, user_id) WHERE left_at IS NULL;
CREATE INDEX participants_active_by_user ON participants (user_id) WHERE left_at IS NULL;

-- Invites (contract 4.4). Status is derived: revoked, else accepted, else expired, else active.
CREATE TABLE invites (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    conversation_id uuid NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    token           text NOT NULL UNIQUE CHECK (token ~ '^[A-Za-z0-9_-]{43}$'),
    email           text NOT NULL,
    role            text NOT NULL CHECK (role IN ('owner', 'admin', 'member', 'viewer')),
    invited_by      uuid NOT NULL REFERENCES users (id),
    created_at      timestamptz NOT NULL DEFAULT now(),
    expires_at      timestamptz NOT NULL,
    accepted_by     uuid REFERENCES users (id),
    accepted_at     timestamptz,
    revoked_at      timestamptz,
    CHECK ((accepted_by IS NULL) = (accepted_at IS NULL))
);
CREATE INDEX invites_by_conversation ON invites (conversation_id, created_at DESC);

-- Messages (contract 5). Ids are UUIDv7; path is the ltree of labels m<32 hex> (1.2), so path order is
-- a depth-first walk with siblings in creation order. Deletion is soft; content is kept.
CREATE TABLE messages (
    id              uuid PRIMARY KEY,
    conversation_id uuid NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    root_id         uuid NOT NULL REFERENCES messages (id) DEFERRABLE INITIALLY DEFERRED,
    parent_id       uuid REFERENCES messages (id),
    author_user_id  uuid REFERENCES users (id),
    role            text NOT NULL CHECK (role IN ('user', 'assistant', 'system', 'tool')),
    content         text NOT NULL,
    path            ltree NOT NULL,
    depth           smallint NOT NULL CHECK (depth BETWEEN 1 AND 64),
    status          text NOT NULL DEFAULT 'complete'
                    CHECK (status IN ('complete', 'streaming', 'cancelled', 'failed')),
    finish_reason   text CHECK (finish_reason IN (
                        'stop', 'length', 'stop_sequence', 'cancelled', 'timeout', 'error')),
    created_at      timestamptz NOT NULL DEFAULT now(),
    edited_at       timestamptz,
    edited_by       uuid REFERENCES users (id),
    edit_reason     text,
    deleted_at      timestamptz,
    deleted_by      uuid REFERENCES users (id),
    delete_reason   text,
    CHECK (nlevel(path) = depth),
    CHECK ((parent_id IS NULL) = (depth = 1)),
    CHECK (parent_id IS NOT NULL OR root_id = id)
);
CREATE INDEX messages_tree ON messages (root_id, path);
-- No GiST index on path: a gist_ltree_ops key holds a subtree's bound paths, and with 33-character labels
-- keys of deep paths (~depth 52) overflow an index page (page splits recurse until "stack depth limit
-- exceeded"), so threads could not reach depth 64. Tree pages use messages_tree (root_id, path).
CREATE INDEX messages_by_conversation ON messages (conversation_id, created_at);
-- Unread counts scan a thread's live messages newer than a watermark.
CREATE INDEX messages_thread_time ON messages (root_id, created_at) WHERE deleted_at IS NULL;

-- Thread summaries kept on write, for keyset paging on (last_activity_at, root_id) (5.5).
CREATE TABLE threads (
    root_id          uuid PRIMARY KEY REFERENCES messages (id) DEFERRABLE INITIALLY DEFERRED,
    conversation_id  uuid NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    created_at       timestamptz NOT NULL,
    last_activity_at timestamptz NOT NULL,
    message_count    integer NOT NULL DEFAULT 1 CHECK (message_count >= 1)
);
CREATE INDEX threads_by_activity ON threads (conversation_id, last_activity_at DESC, root_id DESC);

-- Assistant output chunks (5.7, 9.5): idx contiguous from 0 per message.
CREATE TABLE message_chunks (
    message_id uuid NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    idx        integer NOT NULL CHECK (idx >= 0),
    content    text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (message_id, idx)
);

-- Read watermarks per (user, thread) (5.8); only ever move forward.
CREATE TABLE read_watermarks (
    user_id         uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    root_id         uuid NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    conversation_id uuid NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    read_at         timestamptz NOT NULL,
    PRIMARY KEY (user_id, root_id)
);

-- The durable event log (6.4). envelope is the exact single-line JSON sent as `data:`, encoded once by the
-- writer. audience_user_id NULL = every participant. created_at = clock_timestamp() at insert, taken after
-- the counter row lock, so it never decreases along seq.
CREATE TABLE event_log (
    conversation_id  uuid NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    seq              bigint NOT NULL CHECK (seq >= 1),
    type             text NOT NULL,
    envelope         text NOT NULL,
    audience_user_id uuid,
    created_at       timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (conversation_id, seq)
);
CREATE INDEX event_log_by_age ON event_log (created_at);

-- Assistant jobs (9.2): queued -> running -> done.
CREATE TABLE assistant_jobs (
    id                   uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    conversation_id      uuid NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    trigger_message_id   uuid NOT NULL REFERENCES messages (id),
    assistant_message_id uuid REFERENCES messages (id),
    status               text NOT NULL DEFAULT 'queued' CHECK (status IN ('queued', 'running', 'done')),
    cancel_requested     boolean NOT NULL DEFAULT false,
    worker_id            text,
    lease_expires_at     timestamptz,
    finish_reason        text,
    created_at           timestamptz NOT NULL DEFAULT now(),
    started_at           timestamptz,
    finished_at          timestamptz
);
CREATE INDEX assistant_jobs_queued ON assistant_jobs (created_at) WHERE status = 'queued';
CREATE INDEX assistant_jobs_running ON assistant_jobs (lease_expires_at) WHERE status = 'running';
CREATE UNIQUE INDEX assistant_jobs_by_message ON assistant_jobs (assistant_message_id);

-- Rate limits (8.1, 8.8). Built-in profiles (default, auth.login) are configuration, not rows.
CREATE TABLE rate_limit_profiles (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name        text NOT NULL UNIQUE CHECK (char_length(name) BETWEEN 1 AND 64),
    algorithm   text NOT NULL DEFAULT 'gcra' CHECK (algorithm = 'gcra'),
    params      jsonb NOT NULL,
    description text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE rate_limit_assignments (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    profile_id   uuid NOT NULL REFERENCES rate_limit_profiles (id) ON DELETE RESTRICT,
    method       text NOT NULL CHECK (method IN ('GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD')),
    path_pattern text NOT NULL CHECK (char_length(path_pattern) BETWEEN 1 AND 512),
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (method, path_pattern)
);

-- Seed: inserted only when missing, never overwritten (8.1).
INSERT INTO rate_limit_profiles (name, algorithm, params, description)
VALUES ('conversation.post', 'gcra', '{"requests_per_second": 5, "burst": 10}',
        'Default conversation posting limits')
ON CONFLICT (name) DO NOTHING;
