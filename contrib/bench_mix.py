#!/usr/bin/env python3
"""A helpdesk's mix of mail over SMTP, for contrib/bench-smtp.sh.

smtp-source sends every message from one sender with no Subject, so the
recent-ticket rule never compares anything and acknowledgements stop at the
hourly cap. This driver sends what a helpdesk gets instead: 1,000 customers
at 50 domains writing to support@, sales@ and info@ under 200 subjects; one
message in three is a reply (In-Reply-To and References to that customer's
earlier message), one in ten a follow-up with the same subject and no
headers (the recent-ticket rule's case). Each session is a thread with its
own SMTP connection; a message counts when its 250 arrives.

Prints the rate; the caller measures the server's CPU.
"""

import argparse
import smtplib
import sys
import threading
import time

DOMAINS = 50
CUSTOMERS = 1000
SUBJECTS = 200
ADDRESSES = ["support@example.com", "sales@example.com", "info@example.com"]


def message(i, size, earlier):
    c = i % CUSTOMERS
    sender = f"customer{c}@cust{c % DOMAINS}.example"
    subject = f"Question {(i * 7) % SUBJECTS} about my account"
    to = ADDRESSES[i % len(ADDRESSES)] if i % 5 else ADDRESSES[0]
    mid = f"mix-{i}@cust{c % DOMAINS}.example"
    headers = [
        f"From: Customer {c} <{sender}>",
        f"To: {to}",
        f"Message-ID: <{mid}>",
        "Date: Mon, 02 Mar 2026 10:00:00 +0000",
        "MIME-Version: 1.0",
        "Content-Type: text/plain; charset=utf-8",
    ]
    prev = earlier.get(c)
    if prev and i % 3 == 0:
        headers.append(f"Subject: Re: {prev[1]}")
        headers.append(f"In-Reply-To: <{prev[0]}>")
        headers.append(f"References: <{prev[0]}>")
    elif prev and i % 10 == 1:
        headers.append(f"Subject: {prev[1]}")
    else:
        headers.append(f"Subject: {subject}")
    earlier[c] = (mid, subject)
    line = "Hello, this is about my invoice and the account balance.\r\n"
    body = line * max(1, size // len(line))
    return sender, to, ("\r\n".join(headers) + "\r\n\r\n" + body).encode()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--messages", type=int, default=5000)
    ap.add_argument("--sessions", type=int, default=20)
    ap.add_argument("--size", type=int, default=4096)
    args = ap.parse_args()

    earlier = {}
    mails = [message(i, args.size, earlier) for i in range(args.messages)]
    done = [0] * args.sessions
    failed = []

    def session(k):
        s = smtplib.SMTP("127.0.0.1", args.port, timeout=120)
        for j in range(k, len(mails), args.sessions):
            sender, to, raw = mails[j]
            try:
                s.sendmail(sender, [to], raw)
                done[k] += 1
            except smtplib.SMTPException as e:
                failed.append((j, str(e)))
        s.quit()

    t0 = time.monotonic()
    threads = [threading.Thread(target=session, args=(k,)) for k in range(args.sessions)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - t0
    n = sum(done)
    print(
        f"{'postdesk (mix of senders)':<28} {n:8d} msgs in {elapsed:8.2f} s = {n / elapsed:9.0f} msg/s"
    )
    if failed:
        print(f"bench_mix: {len(failed)} messages failed, first: {failed[0]}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
