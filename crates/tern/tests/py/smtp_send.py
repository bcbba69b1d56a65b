#!/usr/bin/env python3
"""Send one message with smtplib and print the outcome as JSON.

usage: smtp_send.py HOST PORT --from ADDR --to ADDR [--to ADDR ...] [--file PATH]
                    [--starttls] [--ssl] [--login USER PASSWORD] [--ehlo NAME] [--smtputf8]
                    [--source IP] [--mail-option OPT ...] [--rcpt-option OPT ...]
The message is read from --file (bytes, sent as-is) or stdin. --source binds the client's end
of the connection to IP (e.g. 127.0.0.4), for tests that need a client address of their own.
--mail-option / --rcpt-option add ESMTP parameters to MAIL / every RCPT (e.g. NOTIFY=SUCCESS).
Prints {"refused": {rcpt: [code, msg]}} on success or {"error": code, "message": msg}.
"""
import argparse
import json
import smtplib
import ssl
import sys


def main():
    p = argparse.ArgumentParser()
    p.add_argument("host")
    p.add_argument("port", type=int)
    p.add_argument("--from", dest="sender", required=True)
    p.add_argument("--to", action="append", required=True)
    p.add_argument("--file")
    p.add_argument("--starttls", action="store_true")
    p.add_argument("--ssl", action="store_true")
    p.add_argument("--login", nargs=2)
    p.add_argument("--ehlo", default="client.example.test")
    p.add_argument("--smtputf8", action="store_true")
    p.add_argument("--source")
    p.add_argument("--mail-option", action="append", default=[])
    p.add_argument("--rcpt-option", action="append", default=[])
    args = p.parse_args()
    data = open(args.file, "rb").read() if args.file else sys.stdin.buffer.read()
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # the test server uses a self-signed certificate
    source = (args.source, 0) if args.source else None
    try:
        if args.ssl:
            s = smtplib.SMTP_SSL(args.host, args.port, local_hostname=args.ehlo, context=ctx, timeout=30,
                                 source_address=source)
        else:
            s = smtplib.SMTP(args.host, args.port, local_hostname=args.ehlo, timeout=30,
                             source_address=source)
        s.ehlo()
        if args.starttls:
            s.starttls(context=ctx)
            s.ehlo()
        if args.login:
            s.login(args.login[0], args.login[1])
        options = ["SMTPUTF8", "BODY=8BITMIME"] if args.smtputf8 else []
        options += args.mail_option
        refused = s.sendmail(args.sender, args.to, data, mail_options=options,
                             rcpt_options=args.rcpt_option)
        s.quit()
        print(json.dumps({"refused": {k: [v[0], v[1].decode(errors="replace")] for k, v in refused.items()}}))
    except smtplib.SMTPRecipientsRefused as e:
        print(json.dumps({"error": 550, "message": "all recipients refused",
                          "refused": {k: [v[0], v[1].decode(errors="replace")] for k, v in e.recipients.items()}}))
    except smtplib.SMTPResponseException as e:
        print(json.dumps({"error": e.smtp_code, "message": e.smtp_error.decode(errors="replace")}))
    except smtplib.SMTPNotSupportedError as e:
        # e.g. AUTH not offered: the server did not advertise the extension.
        print(json.dumps({"error": "not supported", "message": str(e)}))


if __name__ == "__main__":
    main()
