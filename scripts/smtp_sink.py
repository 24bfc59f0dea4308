"""A real SMTP server for the tests (aiosmtpd): stores every accepted message
as a file, and can answer 451 (try again later) or 550 (rejected) to the first
N deliveries to exercise the mailer's retry and park paths.

Usage: smtp_sink.py --dir DIR [--port PORT] [--refuse-first N] [--reject]
(--port: listen there, e.g. to come back where a stopped sink was; default a free port)
Prints "listening PORT" once ready; runs until killed.
"""
import argparse
import asyncio
import pathlib
import socket
import uuid

from aiosmtpd.controller import Controller


class Sink:
    def __init__(self, directory: pathlib.Path, refuse_first: int, reject: bool):
        self.directory = directory
        self.refuse_left = refuse_first
        self.reject = reject

    async def handle_DATA(self, server, session, envelope):
        if self.reject:
            return "550 5.1.1 mailbox unavailable"
        if self.refuse_left > 0:
            self.refuse_left -= 1
            return "451 4.3.0 try again later"
        name = self.directory / f"{uuid.uuid4()}.eml"
        header = f"X-Envelope-From: {envelope.mail_from}\r\nX-Envelope-To: {','.join(envelope.rcpt_tos)}\r\n"
        name.write_bytes(header.encode() + envelope.original_content)
        return "250 OK"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dir", required=True)
    parser.add_argument("--refuse-first", type=int, default=0)
    parser.add_argument("--reject", action="store_true")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    directory = pathlib.Path(args.dir)
    directory.mkdir(parents=True, exist_ok=True)
    port = args.port or free_port()
    controller = Controller(Sink(directory, args.refuse_first, args.reject), hostname="127.0.0.1", port=port)
    controller.start()
    print(f"listening {port}", flush=True)
    try:
        asyncio.get_event_loop().run_forever()
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
