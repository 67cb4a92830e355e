"""The channel layer settings picked (in-memory, or Redis when REDIS_URL is set) work."""

import os

from channels.layers import get_channel_layer
from django.conf import settings


def test_channel_layer_matches_the_environment() -> None:
    backend = settings.CHANNEL_LAYERS["default"]["BACKEND"]
    expected = "RedisChannelLayer" if os.environ.get("REDIS_URL") else "InMemoryChannelLayer"
    assert backend.endswith(expected)


async def test_a_message_sent_on_the_channel_layer_arrives() -> None:
    layer = get_channel_layer()
    channel = await layer.new_channel()
    await layer.send(channel, {"type": "ping", "n": 1})
    assert await layer.receive(channel) == {"type": "ping", "n": 1}
