"""An SMTP server for Herald's tests (aiosmtpd): listens on 127.0.0.1 and a free port, answers each
message's DATA with the scripted replies given as arguments (then 250), and writes every accepted
message to the directory given as the first argument. It prints `PORT <n>` once listening, and one
JSON line per message (`{"reply": ..., "path": ..., "from": ..., "to": [...]}`) as it answers, so a
test waits on a signal rather than a timer.

With HERALD_SINK_TLS=starttls (STARTTLS required before MAIL) or implicit (TLS from the first byte),
it serves the certificate and key in HERALD_SINK_CERT and HERALD_SINK_KEY."""
import asyncio
import json
import os
import ssl
import sys

from aiosmtpd.smtp import SMTP

directory = sys.argv[1]
replies = list(sys.argv[2:])
count = 0


class Handler:
    async def handle_DATA(self, server, session, envelope):
        global count
        count += 1
        reply = replies.pop(0) if replies else "250 OK"
        path = None
        if reply.startswith("250"):
            path = os.path.join(directory, f"{count:04}.eml")
            with open(path + ".tmp", "wb") as f:
                f.write(envelope.original_content or envelope.content)
            os.rename(path + ".tmp", path)
        print(json.dumps({"reply": reply, "path": path, "from": envelope.mail_from,
                          "to": envelope.rcpt_tos}), flush=True)
        return reply


async def main():
    loop = asyncio.get_running_loop()
    mode = os.environ.get("HERALD_SINK_TLS", "none")
    context = None
    if mode != "none":
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(os.environ["HERALD_SINK_CERT"], os.environ["HERALD_SINK_KEY"])
    if mode == "starttls":
        def factory():
            return SMTP(Handler(), hostname="sink.test", tls_context=context,
                        require_starttls=True)
        server = await loop.create_server(factory, "127.0.0.1", 0)
    elif mode == "implicit":
        server = await loop.create_server(lambda: SMTP(Handler(), hostname="sink.test"),
                                          "127.0.0.1", 0, ssl=context)
    else:
        server = await loop.create_server(lambda: SMTP(Handler(), hostname="sink.test"),
                                          "127.0.0.1", 0)
    print(f"PORT {server.sockets[0].getsockname()[1]}", flush=True)
    await server.serve_forever()


asyncio.run(main())
