-- A post in one round trip (contract 5.3, 6.5, 9.1; bench/api_posts.py).
--
-- Measured before this migration: a reply cost the api six round trips to PostgreSQL (the access check,
-- BEGIN, the write, the unread counts, the event append, COMMIT) and each cost the api about 0.2 ms of CPU,
-- mostly the kernel's loopback work; together they were about half of the api's CPU per post. Here the
-- whole post is one statement: SELECT * FROM tl_post_message(...), in its own implicit transaction.

-- Timestamps as the DTOs write them (contract 1.3): RFC 3339 UTC, 'Z', exactly six fractional digits.
CREATE FUNCTION tl_wire_timestamp(ts timestamptz) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
AS $$ SELECT to_char(ts AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') $$;

-- The event-log writer (contract 6.4, DESIGN 2), the one place that numbers durable events: take the
-- conversation's next sequence numbers (its row lock, held to commit, serialises the writers of a
-- conversation, so numbers are gapless and commit-ordered), insert the rows in order, and queue the doorbell
-- '<conversation_id>:<top seq>', which PostgreSQL delivers on commit. ``activity_at`` also moves the
-- conversation's last_activity_at forward. Returns the top sequence number; NULL when the conversation does
-- not exist. threadline_shared.eventlog.append_events calls it; so does tl_post_message.
CREATE FUNCTION tl_append_events(
    conversation uuid, types text[], envelopes text[], audiences uuid[], channel text,
    activity_at timestamptz
) RETURNS bigint
LANGUAGE sql AS $$
    WITH top AS (
        UPDATE conversations
        SET last_seq = last_seq + cardinality($2),
            last_activity_at = greatest(last_activity_at, coalesce($6, last_activity_at))
        WHERE id = $1
        RETURNING last_seq
    ), inserted AS (
        INSERT INTO event_log (conversation_id, seq, type, envelope, audience_user_id)
        SELECT $1, top.last_seq - cardinality($2) + e.i, e.type, e.envelope, e.audience
        FROM top, unnest($2, $3, $4) WITH ORDINALITY AS e (type, envelope, audience, i)
        ORDER BY e.i
    )
    SELECT top.last_seq FROM top, pg_notify($5, $1::text || ':' || top.last_seq::text)
$$;

-- The unread count of thread $2 for each active participant of conversation $1 but those in $3 (contract
-- 5.8): its messages that are not deleted, not by the participant, newer than the participant's joined_at
-- and than their read watermark, if any (``greatest`` skips a NULL watermark: one bound per participant).
--
-- One index scan of the thread from the lowest bound, read once (MATERIALIZED) and counted in memory for
-- every participant: a post counts for each other participant, and one scan per participant read the same
-- messages from the heap again for each. Measured (bench/api_posts.py, two participants who never read):
-- the counts were about 40% of PostgreSQL's CPU per post with a scan each.
--
-- The plan rests on the table's statistics: the generic plan uses messages_thread_time once threads average
-- a few messages (tests/api/test_messages_queries.py). Planning each call for its own thread
-- (plan_cache_mode = force_custom_plan) made that sure on a fresh database too, but doubled the post's cost.
CREATE FUNCTION tl_unread_counts(conversation uuid, root uuid, excluding uuid[])
RETURNS TABLE (user_id uuid, unread bigint)
LANGUAGE sql STABLE
AS $$
    WITH reader AS MATERIALIZED (
        SELECT p.user_id, greatest(p.joined_at, w.read_at) AS bound
        FROM participants p
        LEFT JOIN read_watermarks w ON w.user_id = p.user_id AND w.root_id = $2
        WHERE p.conversation_id = $1 AND p.left_at IS NULL AND p.user_id <> ALL ($3)
    ), recent AS MATERIALIZED (
        SELECT m.created_at, m.author_user_id FROM messages m
        WHERE m.root_id = $2 AND m.deleted_at IS NULL AND m.created_at > (SELECT min(r.bound) FROM reader r)
    )
    SELECT r.user_id,
           (SELECT count(*) FROM recent m
             WHERE m.created_at > r.bound AND m.author_user_id IS DISTINCT FROM r.user_id)
    FROM reader r
$$;

-- The unread counts a post computes, kept for the next post in the thread (contract 5.8, 6.5). A count is
-- the number of the thread's unread messages, so computing it reads them all; a participant who does not
-- read a busy thread made every post read the whole thread again. A cached count is used again only while it
-- is exact, that is when nothing but this post changed it since: the participant's bound
-- (greatest(joined_at, read_at): reading and joining move it) is the one it was made with, the thread holds
-- one message more than then (any other writer of a message moves threads.message_count), and the thread's
-- unread_version is unchanged (deleting or restoring a message moves it, by trigger, whoever writes it; so
-- does a post that skipped the counts, over the participant cap). The rows of a thread are written only
-- under its row lock (posts hold it from their write to commit), so they change one post at a time.
ALTER TABLE threads ADD COLUMN unread_version bigint NOT NULL DEFAULT 0;
CREATE TABLE unread_cache (
    user_id  uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    root_id  uuid NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    bound    timestamptz NOT NULL,
    messages integer NOT NULL,
    version  bigint NOT NULL,
    unread   bigint NOT NULL CHECK (unread >= 0),
    PRIMARY KEY (root_id, user_id)
);

CREATE FUNCTION tl_void_unread_cache() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE threads SET unread_version = unread_version + 1 WHERE root_id = NEW.root_id;
    RETURN NULL;
END
$$;
CREATE TRIGGER messages_void_unread_cache
AFTER UPDATE OF deleted_at ON messages
FOR EACH ROW WHEN (OLD.deleted_at IS DISTINCT FROM NEW.deleted_at)
EXECUTE FUNCTION tl_void_unread_cache();

-- The unread counts after a post of ``author`` (created at ``created``; the thread, under its lock, at
-- ``version`` with ``messages`` messages) for every other active participant, by user id, and the cache rows
-- updated: a valid cached count plus one when the new message is past the participant's bound; else counted
-- by tl_unread_counts for the participants without a valid count.
CREATE FUNCTION tl_unread_after_post(
    conversation uuid, root uuid, author uuid, created timestamptz, version bigint, messages integer
) RETURNS TABLE (user_id uuid, unread bigint)
LANGUAGE sql AS $$
    WITH reader AS MATERIALIZED (
        SELECT p.user_id, greatest(p.joined_at, w.read_at) AS bound, c.unread AS cached,
               coalesce(
                   c.bound = greatest(p.joined_at, w.read_at) AND c.version = $5 AND c.messages = $6 - 1, false
               ) AS valid
        FROM participants p
        LEFT JOIN read_watermarks w ON w.user_id = p.user_id AND w.root_id = $2
        LEFT JOIN unread_cache c ON c.root_id = $2 AND c.user_id = p.user_id
        WHERE p.conversation_id = $1 AND p.left_at IS NULL AND p.user_id IS DISTINCT FROM $3
    ), counted AS (
        SELECT r.user_id, r.bound, r.cached + (r.bound < $4)::int AS unread FROM reader r WHERE r.valid
        UNION ALL  -- the others counted afresh, by the one definition of a count
        SELECT r.user_id, r.bound, u.unread
        FROM tl_unread_counts(
            $1, $2, array_remove(ARRAY[$3], NULL) || ARRAY(SELECT v.user_id FROM reader v WHERE v.valid)
        ) u
        JOIN reader r ON r.user_id = u.user_id
    ), saved AS (
        INSERT INTO unread_cache (user_id, root_id, bound, messages, version, unread)
        SELECT c.user_id, $2, c.bound, $6, $5, c.unread FROM counted c
        ON CONFLICT (root_id, user_id)
        DO UPDATE SET bound = EXCLUDED.bound, messages = EXCLUDED.messages, version = EXCLUDED.version,
                      unread = EXCLUDED.unread
    )
    SELECT c.user_id, c.unread FROM counted c ORDER BY c.user_id
$$;

-- Post a root (parent NULL, conversation given) or a reply (parent given, conversation NULL): the route's
-- checks in the contract's order, then the write and everything it causes, as one transaction.
--
-- outcome: 'ok', or the first refusal: 'message_not_found' (unknown parent), 'not_participant', 'viewer',
-- 'too_deep' (the reply would be deeper than max_depth); a refusal writes nothing.
--
-- The write: the message; its thread (a new one for a root, else its activity and count moved forward, under
-- the thread row's lock); the author's read watermark (posting marks the thread read for the author, 5.8);
-- the durable events in the contract's order, built here as the DTOs of threadline_shared.dto.events write
-- them (thread.new for a root, message.created, thread.activity, then one unread.update per other active
-- participant by user id, unless the conversation has more than unread_cap participants); the doorbell; and
-- the assistant job when the conversation wants replies (with its own NOTIFY on jobs_channel).
--
-- Each statement of a plpgsql function takes a new snapshot (READ COMMITTED), so the unread counts, read
-- after the thread row's lock was granted, see every reply committed while this one waited for it.
CREATE FUNCTION tl_post_message(
    id uuid, conversation uuid, parent uuid, author uuid, role text, content text, label text,
    excerpt text, max_depth integer, unread_cap integer, events_channel text, jobs_channel text
) RETURNS TABLE (outcome text, in_conversation uuid, in_thread uuid, at_depth integer, assistant_job uuid)
LANGUAGE plpgsql AS $$
#variable_conflict use_variable
DECLARE
    member_role text;
    root uuid;
    path text;
    level integer;
    found_target boolean;
    assistant boolean;
    participants integer;
    created timestamptz;
    thread_created timestamptz;
    activity timestamptz;
    messages_in_thread integer;
    thread_version bigint;
    new_job uuid;
BEGIN
    -- The target and the checks' facts, in one statement (a root's target is its conversation).
    SELECT t.conversation_id, t.root_id, t.path, t.depth, p.role, c.assistant_replies,
           (SELECT count(*) FROM participants a WHERE a.conversation_id = t.conversation_id AND a.left_at IS NULL)
    INTO conversation, root, path, level, member_role, assistant, participants
    FROM (
        SELECT m.conversation_id, m.root_id, m.path::text || '.' || label AS path, m.depth + 1 AS depth
        FROM messages m WHERE parent IS NOT NULL AND m.id = parent
        UNION ALL
        SELECT conversation, id, label, 1 WHERE parent IS NULL
    ) t
    LEFT JOIN conversations c ON c.id = t.conversation_id
    LEFT JOIN participants p
           ON p.conversation_id = t.conversation_id AND p.user_id = author AND p.left_at IS NULL;
    found_target := FOUND;
    IF NOT found_target OR member_role IS NULL OR member_role = 'viewer' OR level > max_depth THEN
        RETURN QUERY SELECT CASE WHEN NOT found_target THEN 'message_not_found'
                                 WHEN member_role IS NULL THEN 'not_participant'
                                 WHEN member_role = 'viewer' THEN 'viewer'
                                 ELSE 'too_deep' END,
                            NULL::uuid, NULL::uuid, NULL::integer, NULL::uuid;
        RETURN;
    END IF;

    -- The write: one statement for the message, its thread (a root's new one, else the reply's, whose row
    -- lock is held to commit) and the author's watermark.
    WITH message AS (
        INSERT INTO messages (id, conversation_id, root_id, parent_id, author_user_id, role, content, path, depth)
        VALUES (id, conversation, root, parent, author, role, content, path::ltree, level)
        RETURNING messages.created_at
    ), new_thread AS (
        INSERT INTO threads (root_id, conversation_id, created_at, last_activity_at, message_count)
        SELECT id, conversation, m.created_at, m.created_at, 1 FROM message m WHERE parent IS NULL
        RETURNING threads.created_at, threads.last_activity_at, threads.message_count, threads.unread_version
    ), replied_thread AS (
        UPDATE threads t
        SET last_activity_at = greatest(t.last_activity_at, m.created_at), message_count = t.message_count + 1,
            unread_version = t.unread_version + (participants > unread_cap)::int
        FROM message m WHERE parent IS NOT NULL AND t.root_id = root
        RETURNING t.created_at, t.last_activity_at, t.message_count, t.unread_version
    ), watermark AS (
        INSERT INTO read_watermarks (user_id, root_id, conversation_id, read_at)
        SELECT author, root, conversation, m.created_at FROM message m WHERE author IS NOT NULL
        ON CONFLICT ON CONSTRAINT read_watermarks_pkey
        DO UPDATE SET read_at = greatest(read_watermarks.read_at, EXCLUDED.read_at)
    )
    SELECT m.created_at, t.created_at, t.last_activity_at, t.message_count, t.unread_version
    INTO created, thread_created, activity, messages_in_thread, thread_version
    FROM message m, (SELECT * FROM new_thread UNION ALL SELECT * FROM replied_thread) t;

    -- The events, in the contract's order (the unread.update ones by user id), and the append, in one
    -- statement. The unread counts are read here, after the thread row's lock was granted (each statement
    -- takes a new snapshot).
    PERFORM tl_append_events(
        conversation,
        array_agg(e.type ORDER BY e.i, e.audience), array_agg(e.envelope ORDER BY e.i, e.audience),
        array_agg(e.audience ORDER BY e.i, e.audience),
        events_channel, created
    )
    FROM (
        SELECT 1 AS i, 'thread.new' AS type, format(
                   '{"type":"thread.new","payload":{"conversation_id":"%s","root_id":"%s","summary":'
                   '{"root_id":"%s","root_excerpt":%s,"root_author":%s,"created_at":"%s",'
                   '"last_activity_at":"%s","message_count":%s,"participant_count":%s}}}',
                   conversation, id, id, to_json(excerpt), coalesce(to_json(author)::text, 'null'),
                   tl_wire_timestamp(thread_created), tl_wire_timestamp(activity), messages_in_thread,
                   participants
               ) AS envelope, NULL::uuid AS audience
        WHERE parent IS NULL
        UNION ALL
        SELECT 2, 'message.created', format(
                   '{"type":"message.created","payload":{"id":"%s","root_id":"%s",%s"conversation_id":"%s",%s'
                   '"role":%s,"content":%s,"path":%s,"depth":%s,"created_at":"%s","status":"complete"}}',
                   id, root, CASE WHEN parent IS NULL THEN '' ELSE format('"parent_id":"%s",', parent) END,
                   conversation,
                   CASE WHEN author IS NULL THEN '' ELSE format('"author_user_id":"%s",', author) END,
                   to_json(role), to_json(content), to_json(path), level, tl_wire_timestamp(created)
               ), NULL
        UNION ALL
        SELECT 3, 'thread.activity', format(
                   '{"type":"thread.activity","payload":{"root_id":"%s","last_activity_at":"%s"}}',
                   root, tl_wire_timestamp(activity)
               ), NULL
        UNION ALL
        SELECT 4, 'unread.update', format(
                   '{"type":"unread.update","payload":{"root_id":"%s","unread":%s}}', root, u.unread
               ), u.user_id
        FROM tl_unread_after_post(conversation, root, author, created, thread_version, messages_in_thread) u
        WHERE participants <= unread_cap
    ) e;

    IF assistant AND role = 'user' AND author IS NOT NULL AND level < max_depth THEN
        WITH job AS (
            INSERT INTO assistant_jobs (conversation_id, trigger_message_id) VALUES (conversation, id)
            RETURNING assistant_jobs.id
        )
        SELECT job.id INTO new_job FROM job, pg_notify(jobs_channel, job.id::text);
    END IF;
    RETURN QUERY SELECT 'ok', conversation, root, level, new_job;
END
$$;
