#!/usr/bin/env python3
"""IMAP scenarios with Python's imaplib against a running Tern; assertions inside.

usage: imap_check.py SCENARIO HOST PORT USER PASSWORD [ARGS...]
Scenarios:
  basic     FILE...  the INBOX holds exactly the given messages (byte-compared after the
                     server's trace headers) in order; LIST, STATUS, SEARCH, FETCH, STORE,
                     COPY/MOVE, EXPUNGE and APPEND behave
  idle      SMTPPORT an IDLE session sees a message delivered over SMTP at once
Prints "ok" and exits 0 when every check passed.
"""
import imaplib
import re
import smtplib
import socket
import ssl
import sys
import time


def connect(host, port, user, password):
    c = imaplib.IMAP4(host, int(port), timeout=30)
    typ, _ = c.login(user, password)
    assert typ == "OK"
    return c


def uid_fetch(c, uid, item):
    typ, data = c.uid("FETCH", str(uid), item)
    assert typ == "OK", (typ, data)
    return data


def basic(host, port, user, password, files):
    originals = [open(f, "rb").read() for f in files]
    c = connect(host, port, user, password)
    caps = c.capabilities
    for cap in ("IMAP4REV2", "IDLE", "UIDPLUS", "MOVE", "CONDSTORE", "SPECIAL-USE", "LITERAL+"):
        assert cap in caps, (cap, caps)
    typ, boxes = c.list()
    assert typ == "OK"
    names = [b.decode() for b in boxes]
    for special in ("\\Sent", "\\Trash", "\\Junk", "\\Drafts"):
        assert any(special in n for n in names), (special, names)

    typ, data = c.status("INBOX", "(MESSAGES UIDNEXT UIDVALIDITY UNSEEN)")
    assert typ == "OK"
    assert f"MESSAGES {len(originals)}" in data[0].decode(), data

    typ, data = c.select("INBOX")
    assert typ == "OK" and int(data[0]) == len(originals), data
    typ, data = c.uid("SEARCH", None, "ALL")
    uids = [int(u) for u in data[0].split()]
    assert len(uids) == len(originals), uids
    for uid, original in zip(uids, originals):
        data = uid_fetch(c, uid, "(BODY.PEEK[] RFC822.SIZE FLAGS)")
        raw = data[0][1]
        # The non-literal parts of the response, wherever the server put the items.
        meta = data[0][0] + b"".join(d for d in data[1:] if isinstance(d, bytes))
        assert raw.endswith(original), (uid, raw[-200:])
        size = int(re.search(rb"RFC822\.SIZE (\d+)", meta).group(1))
        assert size == len(raw), (size, len(raw))
        assert b"\\Seen" not in meta, meta
    # ENVELOPE and BODYSTRUCTURE parse and carry the subject.
    data = uid_fetch(c, uids[0], "(ENVELOPE BODYSTRUCTURE)")
    assert b"ENVELOPE" in data[0] and b"BODYSTRUCTURE" in data[0], data

    # Flags: set, search, clear.
    typ, _ = c.uid("STORE", str(uids[0]), "+FLAGS", "(\\Flagged $Important)")
    assert typ == "OK"
    typ, data = c.uid("SEARCH", None, "FLAGGED")
    assert [int(u) for u in data[0].split()] == [uids[0]], data
    typ, data = c.uid("SEARCH", None, "KEYWORD", "$Important")
    assert [int(u) for u in data[0].split()] == [uids[0]], data

    # COPY to Archive, MOVE to Trash, EXPUNGE.
    typ, data = c.uid("COPY", str(uids[0]), "Archive")
    assert typ == "OK", data
    # imaplib files the tagged response's code under its name.
    typ, copyuid = c.response("COPYUID")
    assert copyuid and copyuid[0], copyuid
    typ, data = c.uid("MOVE", str(uids[-1]), "Trash")
    assert typ == "OK", data
    typ, data = c.status("Trash", "(MESSAGES)")
    assert b"MESSAGES 1" in data[0], data
    typ, data = c.status("Archive", "(MESSAGES)")
    assert b"MESSAGES 1" in data[0], data
    typ, _ = c.uid("STORE", str(uids[0]), "+FLAGS", "(\\Deleted)")
    typ, data = c.expunge()
    assert typ == "OK"
    typ, data = c.status("INBOX", "(MESSAGES)")
    assert f"MESSAGES {len(originals) - 2}".encode() in data[0], data

    # APPEND with flags to Drafts, read back.
    draft = b"From: me@example.test\r\nSubject: draft\r\n\r\nunfinished\r\n"
    typ, data = c.append("Drafts", "(\\Draft)", None, draft)
    assert typ == "OK" and b"APPENDUID" in data[0], data
    c.select("Drafts")
    typ, data = c.fetch("1", "(BODY[] FLAGS)")
    assert data[0][1] == draft, data
    meta = data[0][0] + b"".join(d for d in data[1:] if isinstance(d, bytes))
    assert b"\\Draft" in meta and b"\\Seen" in meta, data

    # CREATE, RENAME, DELETE.
    assert c.create("Projects/Tern")[0] == "OK"
    assert c.rename("Projects", "Work")[0] == "OK"
    names = [b.decode() for b in c.list()[1]]
    assert any('"Work/Tern"' in n or "Work/Tern" in n for n in names), names
    assert c.delete("Work/Tern")[0] == "OK"
    c.logout()


def idle(host, port, user, password, smtp_port):
    raw = socket.create_connection((host, int(port)), timeout=30)
    f = raw.makefile("rb")
    assert f.readline().startswith(b"* OK")
    raw.sendall(f"a LOGIN {user} {password}\r\n".encode())
    while not f.readline().startswith(b"a OK"):
        pass
    raw.sendall(b"b SELECT INBOX\r\n")
    exists = 0
    while True:
        line = f.readline()
        m = re.match(rb"\* (\d+) EXISTS", line)
        if m:
            exists = int(m.group(1))
        if line.startswith(b"b OK"):
            break
    raw.sendall(b"c IDLE\r\n")
    assert f.readline().startswith(b"+"), "no IDLE continuation"
    s = smtplib.SMTP(host, int(smtp_port), timeout=30)
    s.sendmail("x@example.org", [user], b"Subject: idle test\r\n\r\nhi\r\n")
    s.quit()
    start = time.monotonic()
    line = f.readline()
    assert re.match(rb"\* %d EXISTS" % (exists + 1), line), line
    assert time.monotonic() - start < 5, "EXISTS came late"
    raw.sendall(b"DONE\r\n")
    while not f.readline().startswith(b"c OK"):
        pass
    raw.sendall(b"d LOGOUT\r\n")
    raw.close()


def main():
    scenario, host, port, user, password, *rest = sys.argv[1:]
    if scenario == "basic":
        basic(host, port, user, password, rest)
    elif scenario == "idle":
        idle(host, port, user, password, rest[0])
    else:
        sys.exit(f"unknown scenario {scenario}")
    print("ok")


if __name__ == "__main__":
    main()
