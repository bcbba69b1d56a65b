#!/usr/bin/env python3
"""A hostile DNS server for tests: well-formed answers for a few names, crafted broken ones
for the rest, on one loopback port over UDP and TCP. Prints the port on its first line and
serves until killed.

usage: hostile_dns.py

Names (all under .test, case-insensitive); every other question gets NXDOMAIN:
  client.test A              127.0.0.1 (the client's EHLO name, for iprev)
  aN.test A                  192.0.2.1 (targets of the SPF terms of many-lookups.test)
  oversized.test TXT         a valid 3 KB SPF record in 255-octet strings: over UDP only the
                             TC bit (RFC 1035 §4.2.1), the whole record over TCP
  tc-only.test TXT           TC bit over UDP, and TCP closes without answering
  bad-length.test TXT        a character-string whose length runs past RDLENGTH
  pointer-loop.test TXT      the answer's name is a compression pointer to itself
  zero-strings.test TXT      an SPF record split by zero-length character-strings
  non-utf8.test TXT          an SPF record with bytes 0xff 0xfe in it
  two-spf.test TXT           two `v=spf1` records (RFC 7208 §4.5: permerror)
  many-lookups.test TXT      eleven `a:` terms (RFC 7208 §4.6.4: permerror)
  many-records.test TXT      2400 TXT records (60 KB, near the 64 KB TCP message limit), one of them a passing SPF record
  wrong-id.test TXT          an answer with the wrong ID, never the right one
  wrong-question.test TXT    an answer for another name, never the right one
  sel._domainkey.bad-key.test TXT       a DKIM key record with p= garbage
  sel._domainkey.broken-key.test TXT    the DKIM key record with a bad length
  bad-key.test, broken-key.test TXT     "v=spf1 ip4:127.0.0.1 -all"
  _dmarc.absurd.test TXT     p=reject with pct out of range, ri<0, a 400-octet rf, an unknown tag
  absurd.test TXT            "v=spf1 -all"
  _dmarc.non-utf8-dmarc.test TXT   a DMARC p=reject record with non-UTF-8 bytes
  non-utf8-dmarc.test TXT    "v=spf1 -all"
  _dmarc.broken-dmarc.test TXT     the DMARC record with a bad length
  broken-dmarc.test TXT      "v=spf1 ip4:127.0.0.1 -all"
"""
import socket
import struct
import sys
import threading

A, TXT = 1, 16


def strings_of(value):
    """bytes → list of character-strings of at most 255 octets (RFC 1035 §3.3)."""
    return [value[i:i + 255] for i in range(0, len(value), 255)] or [b""]


def txt_rdata(strings):
    return b"".join(bytes([len(s)]) + s for s in strings)


SPF_PASS = b"v=spf1 ip4:127.0.0.1 -all"
OVERSIZED = (b"v=spf1 " + b" ".join(b"ip4:192.0.2.%d" % (i % 250) for i in range(200))
             + b" ip4:127.0.0.1 -all")
GOOD_TXT = {
    "oversized.test": [strings_of(OVERSIZED)],
    "zero-strings.test": [[b"v=spf1 ", b"", b"ip4:127.0.0.1", b"", b" -all"]],
    "non-utf8.test": [[b"v=spf1 ip4:127.0.0.1 \xff\xfe -all"]],
    "two-spf.test": [[SPF_PASS], [b"v=spf1 -all"]],
    "many-lookups.test": [[b"v=spf1 " + b" ".join(b"a:a%d.test" % i for i in range(1, 12))
                           + b" ip4:127.0.0.1 -all"]],
    "many-records.test": [[b"filler %d" % i] for i in range(2399)] + [[SPF_PASS]],
    "sel._domainkey.bad-key.test": [[b"v=DKIM1; k=rsa; p=!!!not base64 at all\xff"]],
    "bad-key.test": [[SPF_PASS]],
    "broken-key.test": [[SPF_PASS]],
    "_dmarc.absurd.test": [strings_of(b"v=DMARC1; p=reject; pct=99999999999999999999; ri=-7; "
                                      b"rf=" + b"x" * 400 + b"; zz=" + b"\\;" * 50)],
    "absurd.test": [[b"v=spf1 -all"]],
    "_dmarc.non-utf8-dmarc.test": [[b"v=DMARC1; p=reject; rua=mailto:\xff\xfe@x.test"]],
    "non-utf8-dmarc.test": [[b"v=spf1 -all"]],
    "broken-dmarc.test": [[SPF_PASS]],
}
BAD_LENGTH = {"bad-length.test", "sel._domainkey.broken-key.test", "_dmarc.broken-dmarc.test"}


def parse_question(query):
    """(id, flags, qname bytes as sent, lowercase name, qtype, end of question) or None."""
    if len(query) < 12:
        return None
    qid, flags = struct.unpack("!HH", query[:4])
    pos, labels = 12, []
    while pos < len(query) and query[pos] != 0:
        n = query[pos]
        labels.append(query[pos + 1:pos + 1 + n])
        pos += 1 + n
    pos += 1
    if pos + 4 > len(query):
        return None
    qtype = struct.unpack("!H", query[pos:pos + 2])[0]
    name = b".".join(labels).decode("ascii", "replace").lower()
    return qid, flags, query[12:pos], name, qtype, pos + 4


def header(qid, rcode, an, tc=False, flags_in=0):
    # QR, AA, RD copied, RA; opcode 0.
    flags = 0x8000 | 0x0400 | (flags_in & 0x0100) | 0x0080 | rcode | (0x0200 if tc else 0)
    return struct.pack("!HHHHHH", qid, flags, 1, an, 0, 0)


def rr(rtype, rdata, name=b"\xc0\x0c"):
    return name + struct.pack("!HHIH", rtype, 1, 60, len(rdata)) + rdata


def answer(query, tcp):
    """The reply bytes for one query, or None for no reply."""
    q = parse_question(query)
    if q is None:
        return None
    qid, flags, qname, name, qtype, end = q
    question = query[12:end]
    if name in ("wrong-id.test",):
        return header(qid ^ 0x5a5a, 0, 1, flags_in=flags) + question + rr(TXT, txt_rdata([SPF_PASS]))
    if name == "wrong-question.test":
        other = b"\x05other\x04test\x00" + struct.pack("!HH", qtype, 1)
        return header(qid, 0, 1, flags_in=flags) + other + rr(TXT, txt_rdata([SPF_PASS]))
    if name == "tc-only.test" and qtype == TXT:
        return header(qid, 0, 0, tc=True, flags_in=flags) + question if not tcp else None
    if name in BAD_LENGTH and qtype == TXT:
        # One string claims 200 octets; RDLENGTH says 10 and the packet ends there.
        return header(qid, 0, 1, flags_in=flags) + question + rr(TXT, b"\xc8v=spf1 ip")
    if name == "pointer-loop.test" and qtype == TXT:
        # The answer's owner name at offset `loop` is a pointer to `loop` itself.
        loop = 12 + len(question)
        ptr = struct.pack("!H", 0xC000 | loop)
        return header(qid, 0, 1, flags_in=flags) + question + rr(TXT, txt_rdata([SPF_PASS]), ptr)
    if qtype == A and (name == "client.test" or (name[:1] == "a" and name[1:].split(".")[0].isdigit())):
        addr = b"\x7f\x00\x00\x01" if name == "client.test" else b"\xc0\x00\x02\x01"
        return header(qid, 0, 1, flags_in=flags) + question + rr(A, addr)
    if name in GOOD_TXT:
        if qtype != TXT:
            return header(qid, 0, 0, flags_in=flags) + question
        body = b"".join(rr(TXT, txt_rdata(s)) for s in GOOD_TXT[name])
        reply = header(qid, 0, len(GOOD_TXT[name]), flags_in=flags) + question + body
        if not tcp and len(reply) > 512:
            # RFC 1035 §4.2.1 / RFC 7766: too big for UDP; the client must retry over TCP.
            return header(qid, 0, 0, tc=True, flags_in=flags) + question
        return reply
    return header(qid, 3, 0, flags_in=flags) + question


def serve_udp(sock):
    while True:
        query, peer = sock.recvfrom(4096)
        reply = answer(query, False)
        if reply is not None:
            sock.sendto(reply, peer)


def serve_tcp_conn(conn):
    with conn:
        while True:
            head = conn.recv(2)
            if len(head) < 2:
                return
            (n,) = struct.unpack("!H", head)
            query = b""
            while len(query) < n:
                chunk = conn.recv(n - len(query))
                if not chunk:
                    return
                query += chunk
            reply = answer(query, True)
            if reply is None:
                return
            conn.sendall(struct.pack("!H", len(reply)) + reply)


def serve_tcp(sock):
    while True:
        conn, _ = sock.accept()
        threading.Thread(target=serve_tcp_conn, args=(conn,), daemon=True).start()


def main():
    for _ in range(20):
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        udp.bind(("127.0.0.1", 0))
        port = udp.getsockname()[1]
        tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            tcp.bind(("127.0.0.1", port))
        except OSError:
            udp.close()
            tcp.close()
            continue
        tcp.listen(64)
        print(port, flush=True)
        threading.Thread(target=serve_tcp, args=(tcp,), daemon=True).start()
        serve_udp(udp)
    sys.exit("no port free for both UDP and TCP")


if __name__ == "__main__":
    main()
