"""A UDP relay that impairs what passes through it: each datagram is dropped with probability `loss`
and otherwise delivered after a random delay in [min_delay, max_delay] (so packets also reorder).

It stands between TURN clients and the TURN server: clients send to the relay's address, the relay
gives each client its own upstream socket towards the server (so the server sees distinct clients) and
impairs both directions. The kernel's netem is not available on these machines, so this is user space.

    python3 impairment_relay.py --listen 10.77.2.1:3490 --upstream 10.77.3.1:3478 --loss 0.05 --delay 30-100 \
        --tcp 10.77.2.1:18301=10.77.3.1:18301

`--tcp LISTEN=UPSTREAM` also forwards a TCP port unimpaired (the signaling WebSocket), for a client
whose only way out is this relay.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import signal


class Impairment:
    def __init__(self, loss: float, min_delay: float, max_delay: float) -> None:
        self.loss, self.min_delay, self.max_delay = loss, min_delay, max_delay
        self.passed = self.dropped = 0

    def send_later(self, transport: asyncio.DatagramTransport, data: bytes, address) -> None:
        if random.random() < self.loss:
            self.dropped += 1
            return
        self.passed += 1
        delay = random.uniform(self.min_delay, self.max_delay)
        asyncio.get_running_loop().call_later(delay, lambda: transport.is_closing() or transport.sendto(data, address))


class Upstream(asyncio.DatagramProtocol):
    """One client's socket towards the server; replies go back to that client."""

    def __init__(self, relay: "Relay", client) -> None:
        self.relay, self.client = relay, client
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, address) -> None:
        self.relay.impairment.send_later(self.relay.transport, data, self.client)


class Relay(asyncio.DatagramProtocol):
    def __init__(self, upstream: tuple[str, int], impairment: Impairment) -> None:
        self.upstream, self.impairment = upstream, impairment
        self.clients: dict = {}
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, client) -> None:
        upstream = self.clients.get(client)
        if upstream is None:
            upstream = Upstream(self, client)
            self.clients[client] = upstream
            loop = asyncio.get_running_loop()
            loop.create_task(loop.create_datagram_endpoint(lambda: upstream, remote_addr=self.upstream))
        if upstream.transport is not None:
            self.impairment.send_later(upstream.transport, data, None)
        # The first datagram of a client arrives before its socket exists: STUN/TURN retransmits it.


async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        writer.close()


def tcp_forwarder(upstream: tuple[str, int]):
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*upstream)
        except OSError:
            writer.close()
            return
        try:
            await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        except asyncio.CancelledError:
            pass  # the relay is shutting down
    return handle


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--listen", required=True)
    parser.add_argument("--upstream", required=True)
    parser.add_argument("--loss", type=float, default=0.05)
    parser.add_argument("--delay", default="30-100", help="milliseconds, MIN-MAX")
    parser.add_argument("--tcp", action="append", default=[], help="LISTEN=UPSTREAM, forwarded unimpaired")
    options = parser.parse_args()
    low, high = (float(v) / 1000 for v in options.delay.split("-"))
    host, port = options.listen.rsplit(":", 1)
    up_host, up_port = options.upstream.rsplit(":", 1)
    impairment = Impairment(options.loss, low, high)
    loop = asyncio.get_running_loop()
    await loop.create_datagram_endpoint(lambda: Relay((up_host, int(up_port)), impairment), local_addr=(host, int(port)))
    for mapping in options.tcp:
        listen, upstream = mapping.split("=")
        l_host, l_port = listen.rsplit(":", 1)
        u_host, u_port = upstream.rsplit(":", 1)
        await asyncio.start_server(tcp_forwarder((u_host, int(u_port))), l_host, int(l_port))
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    print(f"relay {options.listen} → {options.upstream}: loss {options.loss:.0%}, delay {options.delay} ms", flush=True)
    await stop.wait()
    print(f"relay: {impairment.passed} datagrams passed, {impairment.dropped} dropped "
          f"({impairment.dropped / max(1, impairment.passed + impairment.dropped):.1%})", flush=True)


if __name__ == "__main__":
    asyncio.run(main())
