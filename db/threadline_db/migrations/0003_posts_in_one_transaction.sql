-- Several posts in one transaction: the api's lean path makes the posts of one batch together
-- (threadline_api.messages.fastpath; bench/api_posts.py).
--
-- Measured before this migration (PostgreSQL alone, 8 connections, replies of 3-participant threads): a post
-- made in its own transaction cost PostgreSQL 1,010-1,170 µs of CPU; six posts of different conversations
-- made in one transaction cost 790-810 µs each, as the commit, its WAL flush and the protocol's round trip
-- are shared. The api saves a round trip per post as well.
--
-- tl_post_messages makes each post i with tl_post_message (its checks, its write, its events, its doorbell),
-- all in the caller's one transaction, and answers one row per post made or refused, numbered n = i; a
-- refused post writes nothing, as in tl_post_message. It makes no post that would wait for another
-- transaction's post, and answers 'busy' for it instead (the caller makes it on its own): a reply whose
-- thread row is locked, a post whose conversation row is locked (both tried with SKIP LOCKED, the thread's
-- first, as every post takes them), or a second post into a conversation already posted to in this call.
-- So a post waiting for a lock holds back no other post of the batch, and a busy conversation, whose row
-- its own posts hold in turn, does not hold the batch back either. The posts go in conversation order.
--
-- What a batch may still wait for: a reader's watermark row (mark-read writes it, then takes the
-- conversation's row: a cycle with a batch that holds that row), a message's key share against a
-- FOR UPDATE of it (assistant output, cancel), a concurrent insert of the same unique key. lock_wait_ms
-- (NULL: no limit) bounds every lock wait of the transaction (lock_timeout): a batch that waits longer fails
-- with lock_not_available and rolls back, and the caller makes its posts one by one; so no lock holds a
-- batch back for long, and a lock cycle ends as quickly.
CREATE FUNCTION tl_post_messages(
    ids uuid[], conversations uuid[], parents uuid[], authors uuid[], roles text[], contents text[],
    labels text[], excerpts text[], max_depth integer, unread_cap integer, events_channel text,
    jobs_channel text, lock_wait_ms integer
) RETURNS TABLE (
    n integer, outcome text, in_conversation uuid, in_thread uuid, at_depth integer, assistant_job uuid
)
LANGUAGE plpgsql AS $$
#variable_conflict use_variable
DECLARE
    post record;
    posted_into uuid[] := '{}';
BEGIN
    IF lock_wait_ms IS NOT NULL THEN
        PERFORM set_config('lock_timeout', lock_wait_ms || 'ms', true);  -- to the end of the transaction
    END IF;
    FOR post IN
        SELECT p.i::integer AS i, coalesce(p.conversation, m.conversation_id) AS conversation,
               m.root_id AS root
        FROM unnest(conversations, parents) WITH ORDINALITY AS p (conversation, parent, i)
        LEFT JOIN messages m ON m.id = p.parent
        ORDER BY 2, 1  -- an unknown parent (no conversation) last: it only refuses itself
    LOOP
        IF post.conversation = ANY (posted_into) THEN
            RETURN QUERY SELECT post.i, 'busy', NULL::uuid, NULL::uuid, NULL::integer, NULL::uuid;
            CONTINUE;
        END IF;
        IF post.root IS NOT NULL THEN
            PERFORM FROM threads t WHERE t.root_id = post.root FOR NO KEY UPDATE SKIP LOCKED;
            IF NOT FOUND THEN
                RETURN QUERY SELECT post.i, 'busy', NULL::uuid, NULL::uuid, NULL::integer, NULL::uuid;
                CONTINUE;
            END IF;
        END IF;
        IF post.conversation IS NOT NULL THEN
            PERFORM FROM conversations c WHERE c.id = post.conversation FOR NO KEY UPDATE SKIP LOCKED;
            IF NOT FOUND THEN  -- locked (or unknown: made alone, it refuses itself)
                RETURN QUERY SELECT post.i, 'busy', NULL::uuid, NULL::uuid, NULL::integer, NULL::uuid;
                CONTINUE;
            END IF;
            posted_into := posted_into || post.conversation;
        END IF;
        RETURN QUERY
        SELECT post.i, r.outcome, r.in_conversation, r.in_thread, r.at_depth, r.assistant_job
        FROM tl_post_message(
            ids[post.i], conversations[post.i], parents[post.i], authors[post.i], roles[post.i],
            contents[post.i], labels[post.i], excerpts[post.i], max_depth, unread_cap, events_channel,
            jobs_channel
        ) r;
    END LOOP;
END
$$;
