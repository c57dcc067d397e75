"""A real DNS server on loopback for the tests: UDP and TCP on one port,
built on dnspython's message API, serving TXT records the test publishes.

The gateway's resolver (CLIENTTRACK_DNS_NAMESERVERS=127.0.0.1:PORT) asks it
exactly as it would ask a recursive resolver: real packets, real time-outs.
An answer too big for the asker's UDP size (512 bytes without EDNS, as
dnspython asks by default) goes back truncated, so a long DKIM key makes the
resolver retry over TCP, as it must in the world.

    async with LoopbackDns() as server:
        server.publish("sel._domainkey.firm.example", key.record, ttl=300)
        settings = make_settings(..., dns_nameservers=server.address)
"""

from __future__ import annotations

import asyncio
import struct
from collections import Counter

import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset


def txt_strings(record: bytes) -> list[bytes]:
    """A TXT record's text as DNS carries it: strings of at most 255 bytes."""
    return [record[i:i + 255] for i in range(0, len(record), 255)] or [b""]


class LoopbackDns:
    """Names map to a TXT record (bytes), to ``"servfail"``, or to ``"silent"``
    (no answer at all: the asker times out). Anything else is NXDOMAIN."""

    def __init__(self) -> None:
        self.records: dict[str, tuple[bytes | str, int]] = {}
        # Queries per name (lower case, no trailing dot), UDP and TCP alike.
        self.queries: Counter[str] = Counter()
        self.tcp_queries = 0
        self._udp: asyncio.DatagramTransport | None = None
        self._tcp: asyncio.AbstractServer | None = None
        self.port = 0

    @property
    def address(self) -> str:
        """As CLIENTTRACK_DNS_NAMESERVERS takes it."""
        return f"127.0.0.1:{self.port}"

    def publish(self, name: str, record: bytes | str, ttl: int = 300) -> None:
        self.records[name.lower().rstrip(".")] = (record, ttl)

    def answer(self, wire: bytes, limit: int | None) -> bytes | None:
        """The reply to one query; ``limit`` is the UDP size (None over TCP)."""
        query = dns.message.from_wire(wire)
        name = query.question[0].name.to_text(omit_final_dot=True).lower()
        self.queries[name] += 1
        response = dns.message.make_response(query)
        response.flags |= dns.flags.AA
        record, ttl = self.records.get(name, (None, 0))
        if record == "silent":
            return None
        if record == "servfail":
            response.set_rcode(dns.rcode.SERVFAIL)
        elif record is None or query.question[0].rdtype != dns.rdatatype.TXT:
            response.set_rcode(dns.rcode.NXDOMAIN if record is None else dns.rcode.NOERROR)
        else:
            text = " ".join('"' + part.decode("ascii") + '"' for part in txt_strings(record))
            response.answer.append(dns.rrset.from_text(query.question[0].name, ttl, "IN", "TXT", text))
        out = response.to_wire()
        if limit is not None and len(out) > limit:
            # Too big for UDP: say so (TC) and send the question alone.
            response.answer.clear()
            response.flags |= dns.flags.TC
            out = response.to_wire()
        return out

    async def __aenter__(self) -> "LoopbackDns":
        loop = asyncio.get_running_loop()
        server = self
        for _ in range(20):  # a free UDP port whose TCP twin is also free
            udp, _protocol = await loop.create_datagram_endpoint(
                lambda: _Udp(server), local_addr=("127.0.0.1", 0))
            port = udp.get_extra_info("sockname")[1]
            try:
                self._tcp = await asyncio.start_server(self._serve_tcp, "127.0.0.1", port)
            except OSError:
                udp.close()
                continue
            self._udp, self.port = udp, port
            return self
        raise RuntimeError("no free port for the loopback DNS server")

    async def __aexit__(self, *exc) -> None:
        if self._udp is not None:
            self._udp.close()
        if self._tcp is not None:
            self._tcp.close()
            await self._tcp.wait_closed()

    async def _serve_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                (size,) = struct.unpack("!H", await reader.readexactly(2))
                wire = await reader.readexactly(size)
                self.tcp_queries += 1
                out = self.answer(wire, None)
                if out is None:
                    continue
                writer.write(struct.pack("!H", len(out)) + out)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, server: LoopbackDns) -> None:
        self.server = server

    def connection_made(self, transport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr) -> None:
        query = dns.message.from_wire(data)
        limit = max(512, query.payload) if query.edns >= 0 else 512
        out = self.server.answer(data, limit)
        if out is not None:
            self.transport.sendto(out, addr)
