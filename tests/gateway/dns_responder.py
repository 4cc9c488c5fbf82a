"""A DNS server for a test's network namespaces, run in the namespace that holds the servers:
`python dns_responder.py NAME NET=ADDRESS...` answers A queries for NAME from clients in NET with ADDRESS
(the servers' address on that client's side), AAAA with no records, and any other name with NXDOMAIN.

Chromium resolves a TURN server's host name through DNS, not /etc/hosts, so a test that gives `--turn
turn:NAME:3478` as a deployment would needs a name server its pages can reach.
"""

from __future__ import annotations

import ipaddress
import socket
import sys

from dnslib import QTYPE, RCODE, RR, A, DNSRecord


def main() -> None:
    name = sys.argv[1].rstrip(".").lower()
    answers = [(ipaddress.ip_network(net), address) for net, address in (arg.split("=") for arg in sys.argv[2:])]
    server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    server.bind(("0.0.0.0", 53))
    print(f"answering for {name} on port 53", flush=True)
    while True:
        data, client = server.recvfrom(4096)
        try:
            query = DNSRecord.parse(data)
        except Exception:  # noqa: BLE001 (not DNS: ignore it, as a name server would)
            continue
        reply = query.reply()
        if str(query.q.qname).rstrip(".").lower() != name:
            reply.header.rcode = RCODE.NXDOMAIN
        elif query.q.qtype == QTYPE.A:
            for net, address in answers:
                if ipaddress.ip_address(client[0]) in net:
                    reply.add_answer(RR(query.q.qname, QTYPE.A, rdata=A(address), ttl=60))
        server.sendto(reply.pack(), client)


if __name__ == "__main__":
    main()
