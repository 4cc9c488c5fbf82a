"""Two vcall-server nodes on one PostgreSQL database, as real processes, with Chromium pages on both.

The cluster is a throwaway one of this module's own (scripts/postgres-throwaway; its outage test stops and
starts it, so it is not the one scripts/test shares); each test gets a database of its own. A small TCP forwarder stands in for a
load balancer: it sends each new connection to the first node that accepts it.
"""

from __future__ import annotations

import json
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from websockets.sync.client import connect

from app_harness import PostgresCluster as Cluster, Server, Users, free_port
from app_helpers import assert_video_playing, call_each_other, join, new_room_id, peer_id_by_name, wait_connected

@pytest.fixture(scope="module")
def cluster():
    c = Cluster()
    yield c
    c.remove()


class Nodes:
    def __init__(self, database: str, count: int = 2, resume_grace: float = 30) -> None:
        self.nodes = [Server("--database", database, "--resume-grace", str(resume_grace)) for _ in range(count)]

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()


@pytest.fixture
def nodes(cluster):
    n = Nodes(cluster.new_database())
    yield n.nodes
    n.stop()


class Forwarder:
    """Accepts on its own port and pipes each connection to the first backend port that accepts."""

    def __init__(self, backends: list[int]) -> None:
        self.backends = backends
        self.port = free_port()
        self.listener = socket.create_server(("127.0.0.1", self.port))
        self.url = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self.forward, args=(client,), daemon=True).start()

    def forward(self, client: socket.socket) -> None:
        for port in self.backends:
            try:
                upstream = socket.create_connection(("127.0.0.1", port), timeout=2)
                upstream.settimeout(None)
                break
            except OSError:
                continue
        else:
            client.close()
            return

        def pipe(a: socket.socket, b: socket.socket) -> None:
            try:
                while data := a.recv(65536):
                    b.sendall(data)
            except OSError:
                pass
            for s in (a, b):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

        threading.Thread(target=pipe, args=(upstream, client), daemon=True).start()
        pipe(client, upstream)

    def close(self) -> None:
        self.listener.close()


def health(url: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(url + "/healthz", timeout=3) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def first_message(url: str, query: str = "") -> dict:
    with connect(url.replace("http://", "ws://") + "/ws" + query, open_timeout=5) as ws:
        return json.loads(ws.recv(timeout=5))


def test_pages_on_two_nodes_call_each_other_and_see_each_other_online(users, nodes):
    a, b = nodes
    alice = users.new("alice", base_url=a.url)
    bob = users.new("bob", base_url=b.url)
    bob_id, alice_id = call_each_other(alice, bob, new_room_id())
    # A home page on either node lists both in a call; a direct call from node A rings on node B and,
    # accepted, connects.
    carol = users.new("carol", base_url=a.url)
    dave = users.new("dave", base_url=b.url)
    carol.goto("/?name=carol")
    dave.goto("/?name=dave")
    ids = {}
    for label, page in (("carol", carol), ("dave", dave)):
        page.wait_for_function("() => window.vcall.connected && window.vcall.selfId")
        ids[label] = page.evaluate("() => window.vcall.selfId")
        page.wait_for_function(
            "(ids) => ids.every((id) => window.vcall.users.some((u) => u.id === id && u.inCall))", arg=[alice_id, bob_id], timeout=10_000
        )
    carol.click(f'.user[data-user-id="{ids["dave"]}"] .call-button')
    dave.wait_for_selector('#call-dialog[open][data-kind="incoming"]')
    assert "carol is calling you" in dave.locator("#call-title").inner_text()
    dave.click("#call-accept")
    for page in (carol, dave):
        page.wait_for_function("() => window.vcall && window.vcall.page === 'room' && window.vcall.phase === 'joined'")
    for page in (carol, dave):
        [pid] = wait_connected(page, 1)
        assert_video_playing(page, pid)


def test_a_page_whose_node_is_killed_resumes_on_the_other_and_keeps_decoding(users, nodes):
    a, b = nodes
    front = Forwarder([a.port, b.port])
    try:
        alice = users.new("alice", base_url=front.url)
        bob = users.new("bob", base_url=b.url)
        room = new_room_id()
        join(alice, room, "alice")
        join(bob, room, "bob")
        wait_connected(alice, 1)
        wait_connected(bob, 1)
        bob_id = peer_id_by_name(alice, "bob")
        alice_id = peer_id_by_name(bob, "alice")
        assert_video_playing(alice, bob_id)
        my_id = alice.evaluate("() => window.vcall.selfId")
        assert my_id == alice_id

        killed = time.monotonic()
        a.kill()
        # Her socket dropped with node A; the forwarder sends the reconnect to node B, which hands her id over.
        alice.wait_for_function("() => window.vcall.joins >= 2 && window.vcall.phase === 'joined'", timeout=30_000)
        resumed_after = time.monotonic() - killed
        assert alice.evaluate("() => window.vcall.selfId") == alice_id
        # The call never stopped: the same peer, still connected, video still decoding on both sides.
        assert_video_playing(alice, bob_id)
        assert_video_playing(bob, alice_id)
        assert bob.evaluate("(id) => !!window.vcall.peers()[id]", alice_id)
        print(f"resumed on the other node {resumed_after:.1f} s after the kill")
    finally:
        front.close()


def next_of(ws, kind: str, timeout: float = 20) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        message = json.loads(ws.recv(timeout=max(0.1, deadline - time.monotonic())))
        if message["type"] == kind:
            return message


def meet_across_nodes(ada, bob) -> tuple[str, str]:
    """ada (on one node) and bob (on the other) meet in a new room; bob's room-joined lists ada. Returns their ids."""
    ada_id = next_of(ada, "welcome")["id"]
    bob_id = next_of(bob, "welcome")["id"]
    room = new_room_id()
    ada.send(json.dumps({"type": "join-room", "roomId": room}))
    next_of(ada, "room-joined")
    # Bob's node knows she is in a call before he joins.
    while not any(u["id"] == ada_id and u["inCall"] for u in next_of(bob, "online-users")["users"]):
        pass
    bob.send(json.dumps({"type": "join-room", "roomId": room}))
    assert [p["id"] for p in next_of(bob, "room-joined")["peers"]] == [ada_id]
    next_of(ada, "user-joined")
    return ada_id, bob_id


def test_a_database_outage_is_reported_refuses_new_connections_and_heals(cluster, nodes):
    """While PostgreSQL is down: /healthz says so, new sockets get `unavailable`, and a message for the other
    node is not dropped silently (its sender gets `undeliverable`); then everything recovers by itself."""
    a, b = nodes
    assert health(a.url)[0] == 200
    with connect(a.url.replace("http://", "ws://") + "/ws?name=ada", open_timeout=5) as ada, connect(
        b.url.replace("http://", "ws://") + "/ws?name=bob", open_timeout=5
    ) as bob:
        ada_id, bob_id = meet_across_nodes(ada, bob)
        cluster.halt()
        try:
            ada.send(json.dumps({"type": "offer", "to": bob_id, "offer": {"type": "offer", "sdp": "v=0\r\n"}}))
            lost = next_of(ada, "error", timeout=30)
            assert lost["code"] == "undeliverable" and bob_id in lost["message"], lost
            deadline = time.monotonic() + 30
            while (status := health(a.url))[0] == 200 and time.monotonic() < deadline:
                time.sleep(0.5)
            assert status[0] == 503, status
            assert "database" in status[1]["reason"], status
            refused = first_message(a.url)
            assert refused["type"] == "error" and refused["code"] == "unavailable", refused
            assert "database" in refused["message"], refused
        finally:
            cluster.resume()
        deadline = time.monotonic() + 30
        while health(a.url)[0] != 200 and time.monotonic() < deadline:
            time.sleep(0.5)
        assert health(a.url)[0] == 200
        assert first_message(a.url)["type"] == "welcome"
        # The sockets that stayed open work across nodes again.
        ada.send(json.dumps({"type": "offer", "to": bob_id, "offer": {"type": "offer", "sdp": "v=0\r\n"}}))
        assert next_of(bob, "offer")["from"] == ada_id


def test_a_dead_nodes_members_leave_their_rooms_after_the_grace(cluster):
    """Node A killed, its member never comes back: node B finds A's heartbeat stale (10 s), keeps her for the
    resume grace (2 s here) like a dropped socket, then tells the room she left."""
    group = Nodes(cluster.new_database(), resume_grace=2)
    a, b = group.nodes
    try:
        with connect(a.url.replace("http://", "ws://") + "/ws?name=ada", open_timeout=5) as ada, connect(
            b.url.replace("http://", "ws://") + "/ws?name=bob", open_timeout=5
        ) as bob:
            ada_id, _ = meet_across_nodes(ada, bob)
            killed = time.monotonic()
            a.kill()
            left = next_of(bob, "user-disconnected", timeout=40)
            after = time.monotonic() - killed
            assert left["from"] == ada_id
            assert 2 <= after <= 25, after
            print(f"the dead node's member left the room {after:.1f} s after the kill")
    finally:
        group.stop()
