"""Usernames for the user ids that events and messages carry, looked up once per command."""

from __future__ import annotations

from collections.abc import Iterable
from uuid import UUID

from threadline_client.client import ThreadlineClient
from threadline_client.errors import NotFound
from threadline_shared.dto import ConversationView

ASSISTANT = "assistant"


class UserNames:
    def __init__(self, client: ThreadlineClient) -> None:
        self.client = client
        self.names: dict[UUID, str] = {}

    def learn(self, conversation: ConversationView) -> None:
        for participant in conversation.participants:
            self.names[participant.user_id] = participant.username

    async def fetch(self, user_ids: Iterable[UUID | None]) -> None:
        """Look up the ids not known yet (people who left the conversation, new members)."""
        for user_id in {u for u in user_ids if u is not None and u not in self.names}:
            try:
                self.names[user_id] = (await self.client.user(user_id)).username
            except NotFound:
                self.names[user_id] = str(user_id)[:8]

    def __call__(self, user_id: UUID | None) -> str:
        """The username, ``assistant`` for messages without author."""
        if user_id is None:
            return ASSISTANT
        return self.names.get(user_id, str(user_id)[:8])
