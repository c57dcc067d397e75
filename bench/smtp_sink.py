"""The baseline: a bare aiosmtpd sink, built the way the gateway builds its
SMTP server (same class, same options, same event loop set-up), that
accepts everything and keeps nothing."""

from __future__ import annotations

import asyncio
import sys

from aiosmtpd.smtp import SMTP


class Sink:
    async def handle_RCPT(self, server, session, envelope, address, options):
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        return "250 2.0.0 Ok: discarded"


async def main(port: int) -> None:
    handler = Sink()
    server = await asyncio.get_running_loop().create_server(
        lambda: SMTP(handler, data_size_limit=25 * 1024 * 1024, enable_SMTPUTF8=True,
                     hostname="sink.localhost", ident="sink"),
        "127.0.0.1", port,
    )
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    try:
        asyncio.run(main(int(sys.argv[1])))
    except KeyboardInterrupt:
        pass
