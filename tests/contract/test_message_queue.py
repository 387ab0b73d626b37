"""MessageQueue contract: a queue of the main flow takes messages, delayed ones included in its depth."""

from __future__ import annotations

from shared.messages.ports import MessageQueue


async def test_depth_counts_every_waiting_message_delayed_ones_included(message_queue: MessageQueue):
    assert await message_queue.depth() == 0

    await message_queue.send('{"n": 1}')
    await message_queue.send('{"n": 2}', delay_s=30)

    assert await message_queue.depth() == 2
    assert message_queue.name
