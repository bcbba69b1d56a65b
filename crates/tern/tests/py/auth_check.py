#!/usr/bin/env python3
"""Independent email-authentication verdicts (pyspf, dkimpy) with DNS from a test's dnsmasq.

usage: auth_check.py spf DNSPORT IP MAILFROM HELO
           prints the pyspf result of the MAIL FROM identity (pass, fail, softfail, none, ...)
       auth_check.py dkim-sign KEYDIR DOMAIN SELECTOR FILE
           prints FILE signed by dkimpy with the RSA and Ed25519 keys `tern dkim generate` wrote
           into KEYDIR (SELECTOR.rsa.key, SELECTOR.ed25519.key; DNS names SELECTOR-rsa, -ed)
       auth_check.py dkim-verify DNSPORT FILE
           prints one line per DKIM-Signature: "pass" or "fail" as dkimpy sees it
       auth_check.py arc-verify DNSPORT FILE
           prints dkimpy's ARC chain validation of FILE (RFC 8617 §5.2): "pass", "fail" or
           "none", then dkimpy's reason
       auth_check.py imap-status HOST PORT USER PASSWORD MAILBOX
           prints the MESSAGES count of MAILBOX

Debian's python3-spf and python3-dkim live in /usr/lib/python3/dist-packages, which a python3
from pyenv or a venv does not search; it is appended to the path.
"""
import base64
import imaplib
import re
import sys

sys.path.append("/usr/lib/python3/dist-packages")

import dns.resolver  # noqa: E402  (dnspython, as pyspf and dkimpy use it)


def point_dns_at(port):
    r = dns.resolver.Resolver(configure=False)
    r.nameservers = ["127.0.0.1"]
    r.port = int(port)
    r.lifetime = 5
    dns.resolver.default_resolver = r
    return r


def txt_lookup(resolver):
    def dnsfunc(name, timeout=5):
        name = name.decode() if isinstance(name, bytes) else name
        try:
            answers = resolver.resolve(name, "TXT", lifetime=timeout)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return None
        return b"".join(b"".join(r.strings) for r in answers)
    return dnsfunc


def spf_check(port, ip, mail_from, helo):
    point_dns_at(port)
    import spf
    result, _explanation = spf.check2(i=ip, s=mail_from, h=helo)
    print(result)


def pem_der(path):
    text = open(path, "rb").read()
    body = re.search(rb"-----\n(.*?)\n-----", text, re.DOTALL).group(1)
    return text, base64.b64decode(body)


def dkim_sign(keydir, domain, selector, path):
    import dkim
    message = open(path, "rb").read()
    headers = [b"from", b"to", b"subject", b"date", b"message-id"]
    rsa_pem, _ = pem_der(f"{keydir}/{selector}.rsa.key")
    sig_rsa = dkim.sign(message, f"{selector}-rsa".encode(), domain.encode(), rsa_pem,
                        include_headers=headers, canonicalize=(b"relaxed", b"relaxed"))
    # PKCS#8 Ed25519: the 32-byte seed is the DER's tail; dkimpy takes it base64-encoded.
    _, ed_der = pem_der(f"{keydir}/{selector}.ed25519.key")
    sig_ed = dkim.sign(message, f"{selector}-ed".encode(), domain.encode(),
                       base64.b64encode(ed_der[-32:]), signature_algorithm=b"ed25519-sha256",
                       include_headers=headers, canonicalize=(b"relaxed", b"relaxed"))
    sys.stdout.buffer.write(sig_ed + sig_rsa + message)


def dkim_verify(port, path):
    import dkim
    resolver = point_dns_at(port)
    message = open(path, "rb").read()
    d = dkim.DKIM(message)
    count = len([h for h in d.headers if h[0].lower() == b"dkim-signature"])
    for i in range(count):
        try:
            ok = d.verify(idx=i, dnsfunc=txt_lookup(resolver))
        except dkim.ValidationError:  # e.g. body hash mismatch
            ok = False
        except dkim.DKIMException as e:
            print(f"permerror {e}")
            continue
        print("pass" if ok else "fail")


def arc_verify(port, path):
    import dkim
    resolver = point_dns_at(port)
    message = open(path, "rb").read()
    cv, _results, reason = dkim.arc_verify(message, dnsfunc=txt_lookup(resolver))
    print(cv.decode(), reason)


def imap_status(host, port, user, password, mailbox):
    c = imaplib.IMAP4(host, int(port), timeout=30)
    c.login(user, password)
    typ, data = c.status(mailbox, "(MESSAGES)")
    assert typ == "OK", (typ, data)
    print(int(re.search(rb"MESSAGES (\d+)", data[0]).group(1)))
    c.logout()


def main():
    cmd, *args = sys.argv[1:]
    {"spf": spf_check, "dkim-sign": dkim_sign, "dkim-verify": dkim_verify,
     "arc-verify": arc_verify, "imap-status": imap_status}[cmd](*args)


if __name__ == "__main__":
    main()
