-- A post in one round trip (contract 5.3, 6.5, 9.1; bench/api_posts.py).
--
-- Measured before this migration: a reply cost the api seven round trips to PostgreSQL (the access check,
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
LANGUAGE plpgsql AS $$
DECLARE
    n integer := cardinality(types);
    top bigint;
BEGIN
    UPDATE conversations
    SET last_seq = last_seq + n,
        last_activity_at = greatest(last_activity_at, coalesce(activity_at, last_activity_at))
    WHERE id = conversation
    RETURNING last_seq INTO top;
    IF top IS NULL THEN
        RETURN NULL;
    END IF;
    INSERT INTO event_log (conversation_id, seq, type, envelope, audience_user_id)
    SELECT conversation, top - n + e.i, e.type, e.envelope, e.audience
    FROM unnest(types, envelopes, audiences) WITH ORDINALITY AS e(type, envelope, audience, i)
    ORDER BY e.i;
    PERFORM pg_notify(channel, conversation::text || ':' || top::text);
    RETURN top;
END
$$;

-- The unread count of thread $2 for each active participant of conversation $1 but those in $3 (contract
-- 5.8): its messages that are not deleted, not by the participant, newer than the participant's joined_at
-- and than their read watermark, if any. ``greatest`` skips a NULL watermark, so the count has one lower
-- bound, where the messages_thread_time scan starts: it reads only the unread messages.
--
-- The plan rests on the table's statistics: a (cached, generic) plan for the average thread uses
-- messages_thread_time once threads average a few messages (tests/api/test_messages_queries.py). Where the
-- statistics say a thread holds a single message (a fresh database: no autovacuum round yet), the planner
-- may count along messages_tree instead and read whole threads. Planning each call for its own thread
-- (plan_cache_mode = force_custom_plan) avoided that, but doubled the function's cost (0.8 ms per post).
CREATE FUNCTION tl_unread_counts(conversation uuid, root uuid, excluding uuid[])
RETURNS TABLE (user_id uuid, unread bigint)
LANGUAGE sql STABLE
AS $$
    SELECT p.user_id,
           (SELECT count(*) FROM messages m
             WHERE m.root_id = $2 AND m.deleted_at IS NULL
               AND m.author_user_id IS DISTINCT FROM p.user_id
               AND m.created_at > greatest(p.joined_at, w.read_at))
    FROM participants p
    LEFT JOIN read_watermarks w ON w.user_id = p.user_id AND w.root_id = $2
    WHERE p.conversation_id = $1 AND p.left_at IS NULL AND p.user_id <> ALL ($3)
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
    assistant boolean;
    participants integer;
    created timestamptz;
    thread_created timestamptz;
    activity timestamptz;
    messages_in_thread integer;
    types text[];
    envelopes text[];
    audiences uuid[];
    new_job uuid;
BEGIN
    IF parent IS NULL THEN
        SELECT p.role INTO member_role
        FROM participants p
        WHERE p.conversation_id = conversation AND p.user_id = author AND p.left_at IS NULL;
        root := id;
        path := label;
        level := 1;
    ELSE
        SELECT m.conversation_id, m.root_id, m.path::text || '.' || label, m.depth + 1, p.role
        INTO conversation, root, path, level, member_role
        FROM messages m
        LEFT JOIN participants p
               ON p.conversation_id = m.conversation_id AND p.user_id = author AND p.left_at IS NULL
        WHERE m.id = parent;
        IF NOT FOUND THEN
            RETURN QUERY SELECT 'message_not_found', NULL::uuid, NULL::uuid, NULL::integer, NULL::uuid;
            RETURN;
        END IF;
    END IF;
    IF member_role IS NULL OR member_role = 'viewer' OR level > max_depth THEN
        RETURN QUERY SELECT CASE WHEN member_role IS NULL THEN 'not_participant'
                                 WHEN member_role = 'viewer' THEN 'viewer'
                                 ELSE 'too_deep' END,
                            NULL::uuid, NULL::uuid, NULL::integer, NULL::uuid;
        RETURN;
    END IF;

    SELECT c.assistant_replies,
           (SELECT count(*) FROM participants p WHERE p.conversation_id = conversation AND p.left_at IS NULL)
    INTO assistant, participants
    FROM conversations c WHERE c.id = conversation;

    INSERT INTO messages (id, conversation_id, root_id, parent_id, author_user_id, role, content, path, depth)
    VALUES (id, conversation, root, parent, author, role, content, path::ltree, level)
    RETURNING messages.created_at INTO created;
    IF parent IS NULL THEN
        INSERT INTO threads (root_id, conversation_id, created_at, last_activity_at, message_count)
        VALUES (id, conversation, created, created, 1)
        RETURNING threads.created_at, threads.last_activity_at, threads.message_count
        INTO thread_created, activity, messages_in_thread;
    ELSE
        UPDATE threads t
        SET last_activity_at = greatest(t.last_activity_at, created), message_count = t.message_count + 1
        WHERE t.root_id = root
        RETURNING t.created_at, t.last_activity_at, t.message_count
        INTO thread_created, activity, messages_in_thread;
    END IF;
    IF author IS NOT NULL THEN
        INSERT INTO read_watermarks (user_id, root_id, conversation_id, read_at)
        VALUES (author, root, conversation, created)
        ON CONFLICT ON CONSTRAINT read_watermarks_pkey
        DO UPDATE SET read_at = greatest(read_watermarks.read_at, EXCLUDED.read_at);
    END IF;

    types := ARRAY[]::text[];
    envelopes := ARRAY[]::text[];
    audiences := ARRAY[]::uuid[];
    IF parent IS NULL THEN
        types := types || 'thread.new'::text;
        envelopes := envelopes || format(
            '{"type":"thread.new","payload":{"conversation_id":"%s","root_id":"%s","summary":{"root_id":"%s",'
            '"root_excerpt":%s,"root_author":%s,"created_at":"%s","last_activity_at":"%s","message_count":%s,'
            '"participant_count":%s}}}',
            conversation, id, id, to_json(excerpt), coalesce(to_json(author)::text, 'null'),
            tl_wire_timestamp(thread_created), tl_wire_timestamp(activity), messages_in_thread, participants
        );
        audiences := audiences || NULL::uuid;
    END IF;
    types := types || ARRAY['message.created', 'thread.activity']::text[];
    envelopes := envelopes || ARRAY[
        format(
            '{"type":"message.created","payload":{"id":"%s","root_id":"%s",%s"conversation_id":"%s",%s'
            '"role":%s,"content":%s,"path":%s,"depth":%s,"created_at":"%s","status":"complete"}}',
            id, root, CASE WHEN parent IS NULL THEN '' ELSE format('"parent_id":"%s",', parent) END,
            conversation, CASE WHEN author IS NULL THEN '' ELSE format('"author_user_id":"%s",', author) END,
            to_json(role), to_json(content), to_json(path), level, tl_wire_timestamp(created)
        ),
        format(
            '{"type":"thread.activity","payload":{"root_id":"%s","last_activity_at":"%s"}}',
            root, tl_wire_timestamp(activity)
        )
    ];
    audiences := audiences || ARRAY[NULL, NULL]::uuid[];
    IF participants <= unread_cap THEN
        SELECT types || coalesce(array_agg('unread.update'::text ORDER BY u.user_id), ARRAY[]::text[]),
               envelopes || coalesce(
                   array_agg(
                       format('{"type":"unread.update","payload":{"root_id":"%s","unread":%s}}', root, u.unread)
                       ORDER BY u.user_id
                   ),
                   ARRAY[]::text[]
               ),
               audiences || coalesce(array_agg(u.user_id ORDER BY u.user_id), ARRAY[]::uuid[])
        INTO types, envelopes, audiences
        FROM tl_unread_counts(conversation, root, array_remove(ARRAY[author], NULL)) u;
    END IF;
    PERFORM tl_append_events(conversation, types, envelopes, audiences, events_channel, created);

    IF assistant AND role = 'user' AND author IS NOT NULL AND level < max_depth THEN
        INSERT INTO assistant_jobs (conversation_id, trigger_message_id) VALUES (conversation, id)
        RETURNING assistant_jobs.id INTO new_job;
        PERFORM pg_notify(jobs_channel, new_job::text);
    END IF;
    RETURN QUERY SELECT 'ok', conversation, root, level, new_job;
END
$$;
