#!/usr/bin/env python3
"""A TLS close_notify in the middle of a BDAT chunk, followed by cleartext on the same TCP
connection: the rest of the chunk and a whole second transaction. The server must not take
any of the cleartext for chunk octets or commands.

usage: bdat_close_notify.py HOST PORT
Prints {"tls": [replies before the chunk], "after_close_notify": "what the server sent",
"closed": true/false}.
"""
import json
import socket
import ssl
import sys

CHUNK = b"Subject: half\r\n\r\n" + b"x" * 83  # 100 octets announced, 50 sent over TLS
SMUGGLED = (
    b"MAIL FROM:<evil@example.org>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\n"
    b"Subject: smuggled\r\n\r\nevil\r\n.\r\nQUIT\r\n"
)


def reply(f):
    lines = []
    while True:
        line = f.readline()
        if not line:
            raise EOFError("server closed the connection")
        lines.append(line.rstrip(b"\r\n").decode("utf-8", "replace"))
        if len(line) < 4 or line[3:4] != b"-":
            return lines


def main():
    host, port = sys.argv[1], int(sys.argv[2])
    sock = socket.create_connection((host, port), timeout=10)
    f = sock.makefile("rb")
    reply(f)
    sock.sendall(b"EHLO client.test\r\n")
    reply(f)
    sock.sendall(b"STARTTLS\r\n")
    reply(f)
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # the test server uses a self-signed certificate
    tls = ctx.wrap_socket(sock, server_hostname="mail.example.test")
    tf = tls.makefile("rb")
    out = {"tls": []}
    for command in [b"EHLO client.test", b"MAIL FROM:<a@example.org>", b"RCPT TO:<alice@example.test>"]:
        tls.sendall(command + b"\r\n")
        out["tls"].append(reply(tf))
    tls.sendall(b"BDAT 100 LAST\r\n" + CHUNK[:50])
    # unwrap() sends close_notify and waits for the server's (an error if it just closes).
    try:
        raw = tls.unwrap()
    except (ssl.SSLError, OSError) as e:
        out["unwrap"] = str(e)
        raw = socket.socket(fileno=tls.detach())
    raw.settimeout(5)
    seen = b""
    closed = False
    try:
        raw.sendall(CHUNK[50:] + SMUGGLED)
        while True:
            data = raw.recv(4096)
            if not data:
                closed = True
                break
            seen += data
    except (socket.timeout, OSError) as e:
        out["error"] = str(e)
        closed = isinstance(e, (ConnectionResetError, BrokenPipeError))
    out["after_close_notify"] = seen.decode("latin-1")
    out["closed"] = closed
    print(json.dumps(out))


if __name__ == "__main__":
    main()
