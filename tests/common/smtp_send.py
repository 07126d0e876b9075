#!/usr/bin/env python3
"""A real SMTP/LMTP peer for postdesk's integration tests (stdlib only).

Reads one JSON job on stdin:

    {"host": "127.0.0.1", "port": 2525, "lmtp": false, "timeout": 30,
     "connection_per_message": false,
     "messages": [{"from": "a@x", "to": ["support@example.com"],
                   "raw_hex": "...", "mail_options": ["SIZE=123"]}]}

and prints one JSON line per message, in order, as soon as its outcome is
known (so a caller can watch progress, e.g. to kill the server mid-stream):

    {"index": 0, "code": 250, "text": "...", "mail": {...}, "rcpt": [...],
     "data": [{"code": 250, "text": "..."}], "error": null}

`code` is the reply that decided the message: the end-of-data reply (the first
of them for LMTP), or the MAIL/RCPT/DATA reply that stopped the transaction.
It is null when the connection failed before any reply for the message; then
`error` names the exception. LMTP gives one end-of-data reply per accepted
recipient (RFC 2033 section 4.2); smtplib reads only the first, so the rest are
read here with getreply(). After an error the connection is dropped and the
next message opens a new one.
"""

import json
import smtplib
import sys


def reply(code, text):
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return {"code": code, "text": str(text)}


def open_connection(job):
    cls = smtplib.LMTP if job.get("lmtp") else smtplib.SMTP
    conn = cls(timeout=job.get("timeout", 30))
    code, text = conn.connect(job["host"], job["port"])
    if code != 220:
        raise smtplib.SMTPConnectError(code, text)
    code, text = conn.ehlo("client.test")  # LHLO for smtplib.LMTP
    if code != 250:
        raise smtplib.SMTPHeloError(code, text)
    return conn


def send_one(conn, job, msg, res):
    code, text = conn.mail(msg["from"], msg.get("mail_options", []))
    res["mail"] = reply(code, text)
    res["code"], res["text"] = code, reply(code, text)["text"]
    if code != 250:
        conn.rset()
        return
    accepted = 0
    for rcpt in msg["to"]:
        code, text = conn.rcpt(rcpt)
        res["rcpt"].append(reply(code, text))
        res["code"], res["text"] = code, reply(code, text)["text"]
        if code in (250, 251):
            accepted += 1
    if accepted == 0:
        conn.rset()
        return
    data = bytes.fromhex(msg["raw_hex"])
    try:
        # smtplib.data dot-stuffs bytes and adds the final CRLF "." CRLF; it
        # does not rewrite line ends of bytes, so the caller sends CRLF.
        code, text = conn.data(data)
    except smtplib.SMTPDataError as e:
        # DATA itself was refused (not 354).
        res["code"], res["text"] = e.smtp_code, reply(e.smtp_code, e.smtp_error)["text"]
        conn.rset()
        return
    res["data"].append(reply(code, text))
    res["code"], res["text"] = code, reply(code, text)["text"]
    if job.get("lmtp"):
        for _ in range(accepted - 1):
            code, text = conn.getreply()
            res["data"].append(reply(code, text))


def main():
    job = json.load(sys.stdin)
    conn = None
    for index, msg in enumerate(job["messages"]):
        res = {"index": index, "code": None, "text": "", "mail": None,
               "rcpt": [], "data": [], "error": None}
        try:
            if conn is None:
                conn = open_connection(job)
            send_one(conn, job, msg, res)
            if job.get("connection_per_message"):
                try:
                    conn.quit()
                finally:
                    conn = None
        except smtplib.SMTPResponseException as e:
            # A reply the library treats as fatal (421, a bad greeting, ...).
            res["error"] = "%s: %r" % (type(e).__name__, e)
            if res["code"] is None or res["code"] < 300:
                res["code"] = e.smtp_code
                res["text"] = reply(e.smtp_code, e.smtp_error)["text"]
            conn = drop(conn)
        except (smtplib.SMTPException, OSError) as e:
            # Disconnects, refused connections, timeouts, resets: no reply
            # for this message was seen unless one was recorded above.
            res["error"] = "%s: %s" % (type(e).__name__, e)
            if res["data"] == [] and res["code"] == 250:
                # MAIL/RCPT succeeded but the end-of-data reply never came:
                # the message was not acknowledged.
                res["code"] = None
            conn = drop(conn)
        print(json.dumps(res), flush=True)
    if conn is not None:
        try:
            conn.quit()
        except (smtplib.SMTPException, OSError):
            pass


def drop(conn):
    if conn is not None:
        try:
            conn.close()
        except OSError:
            pass
    return None


if __name__ == "__main__":
    main()
