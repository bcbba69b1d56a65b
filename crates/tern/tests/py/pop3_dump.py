#!/usr/bin/env python3
"""Log in with poplib, read the maildrop and print it as JSON.

usage: pop3_dump.py HOST PORT USER PASSWORD [--ssl] [--stls] [--dele N ...] [--top N LINES]
                    [--no-quit]
Prints {"stat": [n, size], "list": [[n, size]], "uidl": [[n, uid]], "messages": [base64],
        "top": base64|null, "capa": {...}} or {"error": message}.
"""
import argparse
import base64
import json
import poplib
import ssl


def main():
    p = argparse.ArgumentParser()
    p.add_argument("host")
    p.add_argument("port", type=int)
    p.add_argument("user")
    p.add_argument("password")
    p.add_argument("--ssl", action="store_true")
    p.add_argument("--stls", action="store_true")
    p.add_argument("--dele", type=int, action="append", default=[])
    p.add_argument("--top", type=int, nargs=2)
    p.add_argument("--no-quit", action="store_true")
    args = p.parse_args()
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # the test server uses a self-signed certificate
    try:
        if args.ssl:
            c = poplib.POP3_SSL(args.host, args.port, context=ctx, timeout=30)
        else:
            c = poplib.POP3(args.host, args.port, timeout=30)
        capa = {k: v for k, v in c.capa().items()}
        if args.stls:
            c.stls(context=ctx)
        c.user(args.user)
        c.pass_(args.password)
        n, size = c.stat()
        listing = [[int(x) for x in line.split()] for line in c.list()[1]]
        uidl = [[int(line.split()[0]), line.split()[1].decode()] for line in c.uidl()[1]]
        messages = []
        for i in range(1, n + 1):
            lines = c.retr(i)[1]
            messages.append(base64.b64encode(b"\r\n".join(lines) + b"\r\n").decode())
        top = None
        if args.top:
            top = base64.b64encode(b"\r\n".join(c.top(args.top[0], args.top[1])[1]) + b"\r\n").decode()
        for i in args.dele:
            c.dele(i)
        if not args.no_quit:
            c.quit()
        else:
            c.sock.close()
        print(json.dumps({"stat": [n, size], "list": listing, "uidl": uidl,
                          "messages": messages, "top": top, "capa": capa}))
    except poplib.error_proto as e:
        print(json.dumps({"error": e.args[0].decode(errors="replace")}))


if __name__ == "__main__":
    main()
