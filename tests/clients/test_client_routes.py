"""The Python client against the real stack through the edge: every REST route method, typed answers, and
problem+json answers raised as typed errors."""

from __future__ import annotations

import asyncpg
import pytest

from tests.clients.conftest import ClientFor
from tests.support.api import PASSWORD, Api
from tests.support.stack import Stack
from threadline_client import (
    BadRequest,
    ConnectionFailed,
    Forbidden,
    Gone,
    NotFound,
    RateLimited,
    ThreadlineClient,
    Unauthorized,
    ValidationFailed,
)
from threadline_devstack.servers import free_port
from threadline_shared.dto import (
    CancelStatus,
    ConversationRole,
    GlobalRole,
    InviteStatus,
    MessageRole,
    PresenceStatus,
)

pytestmark = pytest.mark.e2e


async def throttle_logins(client: ThreadlineClient, username: str) -> RateLimited:
    """Wrong passwords until the per-account login throttle (10 a minute) answers 429."""
    for _ in range(20):
        try:
            await client.login(username, "not the password")
        except Unauthorized:
            continue
        except RateLimited as exc:
            return exc
    raise AssertionError("the login throttle never answered 429")


async def test_setup_registration_login_refresh_and_logout(stack: Stack, pool: asyncpg.Pool) -> None:
    async with ThreadlineClient(stack.edge_url) as client:
        assert (await client.setup_status()).is_setup is False
        alice = await client.setup("alice", "alice@example.com", PASSWORD, display_name="Alice")
        assert alice.roles == [GlobalRole.ADMIN, GlobalRole.MEMBER]
        assert (await client.setup_status()).is_setup is True
        bob = await client.register("bob", "bob@example.com", PASSWORD)
        assert bob.roles == [GlobalRole.MEMBER]

        login = await client.login("alice", PASSWORD)
        assert client.token == login.session_token
        me = await client.me()
        assert (me.user.id, me.session.id) == (alice.id, login.session.id)
        assert [u.username for u in await client.users("b")] == ["bob"]
        assert (await client.user(bob.id)).username == "bob"

        old_token = client.token
        refreshed = await client.refresh()
        assert refreshed.session_token != old_token
        assert (await client.me()).session.id == refreshed.session.id
        async with ThreadlineClient(stack.edge_url, token=old_token) as stale:
            with pytest.raises(Unauthorized) as rotated_away:
                await stale.me()
        assert rotated_away.value.code == "RGP.AUTH.INVALID_SESSION"

        assert (await client.logout()).ok is True
        assert client.session.token is None
        with pytest.raises(Unauthorized) as anonymous:
            await client.me()
    assert anonymous.value.code == "RGP.AUTH.MISSING_SESSION"


async def test_a_global_admin_creates_users_and_manages_rate_limits(api: Api, client_for: ClientFor) -> None:
    alice, bob = client_for(await api.persona("alice")), client_for(await api.persona("bob"))

    carol = await alice.admin_create_user("carol", "carol@example.com", PASSWORD, roles=["read_only"])
    assert carol.roles == [GlobalRole.MEMBER, GlobalRole.READ_ONLY]
    profile = await alice.create_rate_limit_profile(
        "slow", {"requests_per_second": 1, "burst": 2}, description="for tests"
    )
    assert "slow" in [p.name for p in await alice.rate_limit_profiles()]
    updated = await alice.update_rate_limit_profile(profile.id, {"requests_per_second": 2, "burst": 3})
    assert (updated.params.burst, updated.description) == (3, None)
    assignment = await alice.assign_rate_limit(profile.id, "get", "/api/users/*")
    assert (assignment.method, assignment.profile_name) == ("GET", "slow")
    assert [a.id for a in await alice.rate_limit_assignments()] == [assignment.id]
    await alice.delete_rate_limit_assignment(assignment.id)
    await alice.delete_rate_limit_profile(profile.id)
    assert "slow" not in [p.name for p in await alice.rate_limit_profiles()]

    with pytest.raises(Forbidden) as refused:
        await bob.rate_limit_profiles()
    assert (refused.value.status, refused.value.code) == (403, "RGP.RBAC.FORBIDDEN")


async def test_conversations_participants_and_invites(api: Api, client_for: ClientFor) -> None:
    alice_p, bob_p, carol_p = [await api.persona(name) for name in ("alice", "bob", "carol")]
    alice, carol = client_for(alice_p), client_for(carol_p)

    created = await alice.create_conversation("  Trip   plans ", is_group=True)
    conversation_id = created.conversation_id
    await alice.add_participant(conversation_id, bob_p.id, ConversationRole.VIEWER)
    view = await alice.conversation(conversation_id)
    assert (view.title, view.assistant_replies) == ("Trip plans", False)
    assert {p.username: p.role for p in view.participants} == {"alice": "owner", "bob": "viewer"}
    assert [c.id for c in await alice.conversations()] == [conversation_id]

    invite = await alice.create_invite(conversation_id, "carol@example.com", ttl_seconds=600)
    accepted = await carol.accept_invite(invite.token)
    assert (accepted.conversation_id, accepted.role) == (conversation_id, ConversationRole.MEMBER)
    second = await alice.create_invite(conversation_id, "dave@example.com", role="admin")
    await alice.revoke_invite(second.token)
    statuses = {i.email: i.status for i in await alice.invites(conversation_id)}
    assert statuses == {"carol@example.com": InviteStatus.ACCEPTED, "dave@example.com": InviteStatus.REVOKED}
    with pytest.raises(Gone):
        await carol.accept_invite(second.token)

    await alice.remove_participant(conversation_id, bob_p.id)
    await carol.remove_participant(conversation_id, carol_p.id)  # leaves
    assert [p.username for p in (await alice.conversation(conversation_id)).participants] == ["alice"]
    with pytest.raises(Forbidden):
        await carol.conversation(conversation_id)


async def test_threads_messages_read_state_and_cancel(api: Api, client_for: ClientFor) -> None:
    alice_p, bob_p = await api.persona("alice"), await api.persona("bob")
    alice, bob = client_for(alice_p), client_for(bob_p)
    conversation_id = (await alice.create_conversation("Plans", is_group=True)).conversation_id
    await alice.add_participant(conversation_id, bob_p.id)

    root = await alice.post_root(conversation_id, "where to?")
    first = await bob.reply(root.message_id, "the sea")
    second = await alice.reply(first.message_id, "agreed", role=MessageRole.ASSISTANT)
    assert (second.depth, second.parent_id, second.root_id) == (3, first.message_id, root.message_id)

    page = await alice.tree(root.message_id, limit=2)
    assert [m.id for m in page.messages] == [root.message_id, first.message_id]
    assert page.next_cursor is not None
    messages = await alice.thread_messages(root.message_id, page_size=1)
    assert [m.content for m in messages] == ["where to?", "the sea", "agreed"]
    other_root = await alice.post_root(conversation_id, "and when?")
    listed = await alice.threads(conversation_id, limit=1)
    assert [t.root_id for t in listed.threads] == [other_root.root_id] and listed.next_after is not None
    assert [t.root_excerpt async for t in alice.iter_threads(conversation_id, page_size=1)] == [
        "and when?",
        "where to?",
    ]

    assert {t.root_id: t.unread for t in await bob.unread(conversation_id)} == {
        root.root_id: 1,  # bob's own reply moved his watermark past the root
        other_root.root_id: 1,
    }
    assert (await bob.mark_read(root.root_id, message_id=root.message_id)).unread == 1  # never backwards
    assert (await bob.mark_read(root.root_id)).unread == 0

    await bob.edit_message(first.message_id, "the mountains", reason="changed my mind")
    await alice.delete_message(second.message_id, reason="wrong role")
    after_delete = await alice.thread_messages(root.message_id)
    assert [(m.content, m.deleted_at is not None) for m in after_delete[1:]] == [
        ("the mountains", False),
        ("", True),
    ]
    await alice.restore_message(second.message_id)
    assert (await alice.tree(root.message_id)).messages[2].content == "agreed"

    assert await alice.chunks(second.message_id, start=0, limit=10) == []
    assert (await alice.cancel(second.message_id)).status is CancelStatus.NOT_TRACKED
    with pytest.raises(BadRequest) as not_assistant:
        await alice.cancel(root.message_id)
    assert not_assistant.value.code == "RGP.V1.CANCEL_ROLE"


async def test_presence_and_typing_go_to_the_presence_service_through_the_same_url(
    api: Api, client_for: ClientFor
) -> None:
    alice_p, bob_p = await api.persona("alice"), await api.persona("bob")
    alice, bob = client_for(alice_p), client_for(bob_p)
    conversation_id = (await alice.create_conversation("Plans", is_group=True)).conversation_id
    await alice.add_participant(conversation_id, bob_p.id)

    await alice.heartbeat()
    await bob.heartbeat(PresenceStatus.AWAY)
    await bob.typing(conversation_id, 10)
    snapshot = await alice.presence(conversation_id)
    assert {p.user_id: p.status for p in snapshot.participants} == {
        alice_p.id: PresenceStatus.ONLINE,
        bob_p.id: PresenceStatus.AWAY,
    }
    assert [(t.user_id, t.root_id) for t in snapshot.typing] == [(bob_p.id, None)]
    await bob.typing(conversation_id, 0)
    assert (await alice.presence(conversation_id)).typing == []


async def test_cookie_sessions_send_the_csrf_token_from_the_cookie(stack: Stack, api: Api) -> None:
    await api.persona("alice")
    async with ThreadlineClient(stack.edge_url, use_cookies=True) as browser_like:
        await browser_like.login("alice@example.com", PASSWORD)
        assert browser_like.session.http.cookies.get("SESSION_ID") == browser_like.token
        created = await browser_like.create_conversation("Cookies")
        assert (await browser_like.conversation(created.conversation_id)).title == "Cookies"

        browser_like.session.http.cookies.set("CSRF-TOKEN", "forged")
        browser_like.session.use_cookies = False  # send the cookie, but echo nothing
        browser_like.session.token = None
        with pytest.raises(Forbidden) as csrf:
            await browser_like.create_conversation("Forged")
    assert csrf.value.code == "RGP.AUTH.CSRF"


async def test_problem_answers_are_typed_errors_with_code_title_detail_and_retry_after(
    stack: Stack, api: Api, client_for: ClientFor
) -> None:
    alice = client_for(await api.persona("alice"))
    with pytest.raises(ValidationFailed) as invalid:
        await alice.create_conversation("   ")
    assert invalid.value.status == 422 and invalid.value.code == "validation_failed"
    assert invalid.value.title == "Unprocessable Content" or invalid.value.title.startswith("Unprocessable")
    assert [e["field"] for e in invalid.value.field_errors] == ["title"]
    with pytest.raises(NotFound) as missing:
        await alice.reply("0193a5b2-7c1e-7d3a-9f21-3b4c5d6e7f80", "hello?")
    assert (missing.value.code, missing.value.detail) == ("RGP.NOT_FOUND", "message not found")

    async with ThreadlineClient(stack.edge_url) as anonymous:
        with pytest.raises(Unauthorized) as wrong:
            await anonymous.login("alice", "not the password")
        assert wrong.value.code == "RGP.AUTH.INVALID_CREDENTIALS"
        throttled = await throttle_logins(anonymous, "alice")
    assert throttled.code == "RGP.RATE_LIMITED"
    assert throttled.retry_after is not None and throttled.retry_after >= 1
    assert throttled.summary == "Too Many Requests: rate limit exceeded"

    async with ThreadlineClient(f"http://127.0.0.1:{free_port()}") as nowhere:
        with pytest.raises(ConnectionFailed) as refused:
            await nowhere.setup_status()
    assert refused.value.reason == "connection refused"
