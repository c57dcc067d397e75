"""The DKIM key resolver (CLIENTTRACK_DNS_NAMESERVERS) against a real DNS
server on loopback (tests/dnsserver.py): UDP, TCP when the answer is too
big, failures, and keys kept for their TTL."""

from __future__ import annotations

import asyncio
import time

import pytest

from gateway.admission.keylookup import MAX_TTL_SECONDS, DnsFailure, dns_resolver
from tests.dkimkeys import Key
from tests.dnsserver import LoopbackDns

pytestmark = pytest.mark.no_database  # the PostgreSQL pass leaves these out (tests/testdb.py)

NAME = "sel._domainkey.firm.example"


class Monotonic:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def server():
    async with LoopbackDns() as dns:
        yield dns


async def test_a_key_too_big_for_udp_comes_over_tcp(server):
    key = Key(4096)
    server.publish(NAME, key.record)
    assert await dns_resolver(2.0, nameservers=[server.address])(NAME) == key.record
    assert server.tcp_queries == 1


async def test_no_key_is_none_and_a_broken_server_a_failure(server):
    server.publish("broken._domainkey.firm.example", "servfail")
    resolve = dns_resolver(2.0, nameservers=[server.address])
    assert await resolve("missing._domainkey.firm.example") is None
    with pytest.raises(DnsFailure, match="no DNS server answered"):
        await resolve("broken._domainkey.firm.example")


async def test_a_silent_server_times_out_quickly(server):
    server.publish(NAME, "silent")
    started = time.monotonic()
    with pytest.raises(DnsFailure, match="timed out"):
        await dns_resolver(0.5, nameservers=[server.address])(NAME)
    assert time.monotonic() - started < 2.0


async def test_a_closed_port_fails_quickly():
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(asyncio.DatagramProtocol, local_addr=("127.0.0.1", 0))
    port = transport.get_extra_info("sockname")[1]
    transport.close()
    started = time.monotonic()
    with pytest.raises(DnsFailure):
        await dns_resolver(1.0, nameservers=[f"127.0.0.1:{port}"])(NAME)
    assert time.monotonic() - started < 2.0


async def test_keys_are_kept_for_their_ttl(server):
    server.publish(NAME, b"v=DKIM1; p=AAAA", ttl=300)
    clock = Monotonic()
    resolve = dns_resolver(2.0, nameservers=[server.address], monotonic=clock)
    for _ in range(3):
        assert await resolve(NAME) == b"v=DKIM1; p=AAAA"
    assert server.queries[NAME] == 1
    server.publish(NAME, b"v=DKIM1; p=BBBB", ttl=300)
    clock.now += 299
    assert await resolve(NAME) == b"v=DKIM1; p=AAAA"
    clock.now += 2
    assert await resolve(NAME) == b"v=DKIM1; p=BBBB"
    assert server.queries[NAME] == 2


async def test_a_long_ttl_is_cut_to_an_hour(server):
    server.publish(NAME, b"v=DKIM1; p=AAAA", ttl=86400)
    clock = Monotonic()
    resolve = dns_resolver(2.0, nameservers=[server.address], monotonic=clock)
    await resolve(NAME)
    clock.now += MAX_TTL_SECONDS + 1
    await resolve(NAME)
    assert server.queries[NAME] == 2


async def test_no_key_is_not_kept_so_a_new_key_works_at_once(server):
    resolve = dns_resolver(2.0, nameservers=[server.address], monotonic=Monotonic())
    assert await resolve(NAME) is None
    server.publish(NAME, b"v=DKIM1; p=AAAA")
    assert await resolve(NAME) == b"v=DKIM1; p=AAAA"
