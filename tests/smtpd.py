"""The SMTP server the mail tests deliver to: aiosmtpd (PyPI, pinned by .ci/run)
with what the tests need of a real mail server, chosen by flags:

  --listen HOST:PORT         where to listen
  --maildir DIR              deliver each message into DIR/new
  --starttls CERT KEY        offer STARTTLS and refuse mail before it
  --smtps CERT KEY           TLS from the first byte
  --auth USER:PASSWORD       require AUTH (PLAIN or LOGIN, only over TLS)
  --refuse N                 answer the first N messages with 451 (try again later)

It prints one line per event on stdout (`tls`, `auth ok USER`, `auth failed`,
`refused`, `delivered`) for the tests to read.
"""

import argparse
import asyncio
import mailbox
import signal
import ssl
import sys

from aiosmtpd.handlers import Mailbox
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword


def log(line):
    print(line, flush=True)


class Handler(Mailbox):
    def __init__(self, maildir, refuse):
        super().__init__(maildir)
        self.refuse = refuse

    def handle_STARTTLS(self, server, session, envelope):
        # aiosmtpd calls this hook without awaiting it.
        log("tls")
        return True

    async def handle_DATA(self, server, session, envelope):
        if self.refuse > 0:
            self.refuse -= 1
            log("refused")
            return "451 4.3.0 Try again later"
        encrypted = session.ssl is not None or (
            server.transport.get_extra_info("ssl_object") is not None
        )
        tls = "tls" if encrypted else "plain"
        result = await super().handle_DATA(server, session, envelope)
        log(f"delivered {tls} {envelope.mail_from} {' '.join(envelope.rcpt_tos)}")
        return result


def authenticator(expected):
    user, _, password = expected.partition(":")

    def check(server, session, envelope, mechanism, auth_data):
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login.decode() == user
            and auth_data.password.decode() == password
        )
        log(f"auth ok {user}" if ok else "auth failed")
        return AuthResult(success=ok)

    return check


def context(cert, key):
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    return ctx


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--listen", required=True)
    parser.add_argument("--maildir", required=True)
    parser.add_argument("--starttls", nargs=2, metavar=("CERT", "KEY"))
    parser.add_argument("--smtps", nargs=2, metavar=("CERT", "KEY"))
    parser.add_argument("--auth")
    parser.add_argument("--refuse", type=int, default=0)
    args = parser.parse_args()

    host, _, port = args.listen.rpartition(":")
    handler = Handler(args.maildir, args.refuse)
    smtp_kwargs = {"hostname": "localhost"}
    if args.starttls:
        smtp_kwargs["tls_context"] = context(*args.starttls)
        smtp_kwargs["require_starttls"] = True
    if args.auth:
        smtp_kwargs["authenticator"] = authenticator(args.auth)
        smtp_kwargs["auth_required"] = True
        # Over smtps:// the whole connection is TLS, which aiosmtpd does not see.
        smtp_kwargs["auth_require_tls"] = not args.smtps
    server_tls = context(*args.smtps) if args.smtps else None

    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(handler, **smtp_kwargs),
        host=host,
        port=int(port),
        ssl=server_tls,
    )
    log(f"listening {args.listen}")
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    server.close()
    await server.wait_closed()


if __name__ == "__main__":
    mailbox.Maildir(sys.argv[sys.argv.index("--maildir") + 1], create=True)
    asyncio.run(main())
