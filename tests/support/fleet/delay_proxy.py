#!/usr/bin/env python3
"""A TCP proxy that adds a fixed one-way delay in each direction: the fleet test's
stand-in for an inter-region link (`tc netem` is not available on this kind of machine).

usage: delay_proxy.py --delay-ms 40 LISTEN_HOST:PORT=UPSTREAM_HOST:PORT [...]

Every chunk read from one side is written to the other `delay` seconds after it was read,
in order, so the proxy adds latency without limiting throughput (a connection's round
trip grows by 2 x delay, and connecting upstream costs one more round trip). Half-closes
are forwarded; when the upstream cannot be reached the client connection is closed at
once, as a dead route would fail. Stops on SIGTERM/SIGINT.
"""

import argparse
import asyncio
import signal
import sys


def parse_address(text):
    host, _, port = text.rpartition(":")
    return host, int(port)


async def pump(reader, writer, delay, closing):
    """Copies reader -> writer, each chunk `delay` seconds after it arrived."""
    loop = asyncio.get_running_loop()
    queue = asyncio.Queue()

    async def receive():
        try:
            while True:
                data = await reader.read(65536)
                await queue.put((loop.time() + delay, data))
                if not data:
                    return
        except (ConnectionError, OSError):
            await queue.put((loop.time(), None))

    async def send():
        while True:
            due, data = await queue.get()
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            if data is None:  # reset on the reading side: tear both sides down
                closing.set()
                return
            if not data:
                if writer.can_write_eof():
                    writer.write_eof()
                return
            writer.write(data)
            await writer.drain()

    receiving = asyncio.create_task(receive())
    try:
        await send()
    except (ConnectionError, OSError):
        closing.set()
    finally:
        receiving.cancel()


async def handle(client_reader, client_writer, upstream, delay):
    try:
        # Connecting crosses the link too: one round trip.
        await asyncio.sleep(2 * delay)
        up_reader, up_writer = await asyncio.wait_for(asyncio.open_connection(*upstream), timeout=3)
    except (OSError, asyncio.TimeoutError):
        client_writer.close()
        return
    closing = asyncio.Event()
    forward = asyncio.create_task(pump(client_reader, up_writer, delay, closing))
    backward = asyncio.create_task(pump(up_reader, client_writer, delay, closing))
    closed = asyncio.create_task(closing.wait())
    both = asyncio.gather(forward, backward)
    await asyncio.wait([both, closed], return_when=asyncio.FIRST_COMPLETED)
    for task in (forward, backward, closed):
        task.cancel()
    for writer in (client_writer, up_writer):
        try:
            writer.close()
        except OSError:
            pass


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--delay-ms", type=float, default=40)
    parser.add_argument("routes", nargs="+", help="LISTEN_HOST:PORT=UPSTREAM_HOST:PORT")
    args = parser.parse_args()
    delay = args.delay_ms / 1000
    servers = []
    for route in args.routes:
        listen, _, upstream = route.partition("=")
        host, port = parse_address(listen)
        target = parse_address(upstream)
        server = await asyncio.start_server(
            lambda r, w, target=target: handle(r, w, target, delay), host, port, reuse_address=True
        )
        servers.append(server)
    print(f"delay proxy: {len(servers)} route(s), {args.delay_ms:.0f} ms each way", file=sys.stderr, flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    for server in servers:
        server.close()


if __name__ == "__main__":
    asyncio.run(main())
