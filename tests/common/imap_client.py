#!/usr/bin/env python3
"""IMAP peer for the integration tests (stdlib imaplib only).

Reads one JSON job on stdin:
  {"host", "port", "user", "password",
   "ops": [{"op": "append", "folder", "messages_hex": [...]},
           {"op": "create", "folder"}, {"op": "rename", "from", "to"},
           {"op": "flags", "folder"}]}
and prints one JSON object: {"results": [...]} with, per op, the UIDs
appended (APPENDUID) or the list of [uid, flags] for "flags".
"""
import imaplib
import json
import re
import sys


def main():
    job = json.load(sys.stdin)
    m = imaplib.IMAP4(job["host"], job["port"], timeout=60)
    m.login(job["user"], job["password"])
    results = []
    for op in job["ops"]:
        kind = op["op"]
        if kind == "append":
            uids = []
            for h in op["messages_hex"]:
                typ, data = m.append(op["folder"], None, None, bytes.fromhex(h))
                if typ != "OK":
                    raise SystemExit(f"APPEND failed: {data}")
                match = re.search(rb"APPENDUID \d+ (\d+)", data[0] or b"")
                uids.append(int(match.group(1)) if match else None)
            results.append(uids)
        elif kind == "create":
            typ, data = m.create(op["folder"])
            results.append(typ)
        elif kind == "rename":
            typ, data = m.rename(op["from"], op["to"])
            if typ != "OK":
                raise SystemExit(f"RENAME failed: {data}")
            results.append(typ)
        elif kind == "flags":
            typ, _ = m.select(op["folder"], readonly=True)
            if typ != "OK":
                raise SystemExit("SELECT failed")
            typ, data = m.uid("FETCH", "1:*", "(FLAGS)")
            out = []
            for line in data:
                if not line:
                    continue
                text = line.decode() if isinstance(line, bytes) else line[0].decode()
                uid = re.search(r"UID (\d+)", text)
                flags = re.search(r"FLAGS \(([^)]*)\)", text)
                if uid:
                    out.append([int(uid.group(1)), flags.group(1).split() if flags else []])
            results.append(out)
            m.close()
        else:
            raise SystemExit(f"unknown op {kind}")
    m.logout()
    print(json.dumps({"results": results}))


if __name__ == "__main__":
    main()
