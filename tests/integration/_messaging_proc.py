"""Subprocess entry points of the crash tests: each runs one role and may SIGKILL itself.

    python tests/integration/_messaging_proc.py MODE --store cassandra|mongo --keyspace K
        --database D --type T [--queue Q] [--thing ID --event-id E]

Modes (the kill is `os.kill(getpid(), SIGKILL)`: no clean-up, no flush, like a power cut):

    write-then-die-before-publish  commit state + outbox, then die when the relay is about to
                                   publish (between commit and publish)
    relay                          publish everything pending, then exit 0
    relay-die-before-mark          publish pending events (confirmed), die before marking them
    consume-die-before-ack         apply the effect and record it in the inbox, die before the ack

Progress lines go to stdout (flushed) for the test to read.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from collections.abc import Sequence

from _messaging_stores import open_things
from _messaging_types import probe_class

from kit.bus import Bus
from kit.config import RabbitSettings
from kit.events import Event
from kit.inbox import idempotent
from kit.outbox import Relay


def say(line: str) -> None:
    print(line, flush=True)


def die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


class DieBeforePublish:
    """A bus whose publish kills the process: the relay got the events, none is sent."""

    async def publish(self, events: Sequence[Event]) -> None:
        say(f"about to publish {len(events)}")
        die()


class DieBeforeMark:
    """Wraps an outbox: its mark_sent kills the process (the publish was confirmed)."""

    def __init__(self, outbox: object) -> None:
        self._outbox = outbox
        self.wakeup = outbox.wakeup  # type: ignore[attr-defined]

    async def pending(self, limit: int) -> list[Event]:
        return await self._outbox.pending(limit)  # type: ignore[attr-defined]

    async def mark_sent(self, events: Sequence[Event]) -> None:
        say(f"confirmed {len(events)} {' '.join(e.id for e in events)}")
        die()

    def notify(self) -> None:
        self._outbox.notify()  # type: ignore[attr-defined]


async def main(args: argparse.Namespace) -> int:
    probe = probe_class(args.type)
    things = await open_things(args.store, keyspace=args.keyspace, database=args.database)
    settings = RabbitSettings.from_env()

    if args.mode == "write-then-die-before-publish":
        relay = Relay(things.outbox, DieBeforePublish(), interval=5.0)
        task = asyncio.create_task(relay.run())
        await asyncio.sleep(0.2)  # the relay's first pass finds nothing and waits
        event = Event.of(probe(thing_id=args.thing, n=1), "things", id=args.event_id)
        await things.write(args.thing, "written", [event])  # notifies the relay
        say(f"committed {event.id}")
        await task  # dies inside
        return 1

    bus = await Bus.connect(settings, "things", wait_seconds=10)
    if args.mode == "relay":
        relay = Relay(things.outbox, bus, batch_size=500)
        while await relay.publish_pending():
            pass
        say(f"published {relay.published}")
        await bus.close()
        await things.close()
        return 0

    if args.mode == "relay-die-before-mark":
        relay = Relay(DieBeforeMark(things.outbox), bus, batch_size=500)
        await relay.publish_pending()
        return 1  # nothing was pending

    if args.mode == "consume-die-before-ack":
        inbox = await things.inbox(args.queue)

        async def effect(event: Event) -> None:
            await things.apply_effect(event, inbox)

        handle = idempotent(inbox, effect)

        async def handle_then_die(event: Event) -> None:
            await handle(event)
            say(f"applied {event.id}")
            die()  # the handler returned, the bus has not acked yet

        await bus.consume(args.queue, handle_then_die, prefetch=1)
        say("consuming")
        await asyncio.sleep(60)
        return 1

    raise SystemExit(f"unknown mode {args.mode}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("mode")
    parser.add_argument("--store", required=True)
    parser.add_argument("--keyspace", required=True)
    parser.add_argument("--database", required=True)
    parser.add_argument("--type", required=True)
    parser.add_argument("--queue")
    parser.add_argument("--thing")
    parser.add_argument("--event-id")
    sys.exit(asyncio.run(main(parser.parse_args())))
