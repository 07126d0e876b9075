#!/usr/bin/env python3
"""Which tables and indexes each commit in a SQLite WAL wrote.

    contrib/wal-pages.py DATA_DIR [LAST]

Reads DATA_DIR/postdesk.sqlite3-wal, splits its frames into commits and
names the b-tree (table, index or search-index table) each frame's page
belongs to, for the LAST commits (default 10): what storing a message costs
on disk, page by page. Run it on a copy, or on a data dir whose server was
stopped with `kill -9` right after the mail of interest was answered (a
clean stop checkpoints and empties the WAL). The database and its WAL are
copied to a scratch directory first, so the store itself is never opened.

Needs Python's sqlite3 built with the dbstat table (Debian's is).
"""

import collections
import os
import shutil
import sqlite3
import struct
import sys
import tempfile

HEADER = struct.Struct(">IIIIIIII")
FRAME = struct.Struct(">IIIIII")
WAL_MAGIC = (0x377F0682, 0x377F0683)


def commits(wal: bytes) -> list[list[int]]:
    """The page numbers of each committed transaction, oldest first."""
    if len(wal) < HEADER.size:
        raise ValueError("the WAL is empty (was the server stopped cleanly?)")
    magic, _ver, page_size, _seq, salt1, salt2, _c1, _c2 = HEADER.unpack_from(wal)
    if magic not in WAL_MAGIC:
        raise ValueError(f"not a SQLite WAL (magic {magic:#x})")
    out, current, off = [], [], HEADER.size
    while off + FRAME.size + page_size <= len(wal):
        page, commit_size, s1, s2, _k1, _k2 = FRAME.unpack_from(wal, off)
        if (s1, s2) != (salt1, salt2):
            break  # frames of an earlier generation of the WAL
        current.append(page)
        if commit_size:
            out.append(current)
            current = []
        off += FRAME.size + page_size
    return out


def main() -> int:
    if len(sys.argv) not in (2, 3) or not os.path.isdir(sys.argv[1]):
        print("usage: wal-pages.py DATA_DIR [LAST]", file=sys.stderr)
        return 2
    last = int(sys.argv[2]) if len(sys.argv) == 3 else 10
    db = os.path.join(sys.argv[1], "postdesk.sqlite3")
    wal = db + "-wal"
    if not os.path.exists(wal):
        print(f"{wal}: no WAL (the server checkpoints it away when it stops)",
              file=sys.stderr)
        return 1
    try:
        txs = commits(open(wal, "rb").read())
    except ValueError as e:
        print(f"{wal}: {e}", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory() as tmp:
        shutil.copy(db, os.path.join(tmp, "d.sqlite3"))
        shutil.copy(wal, os.path.join(tmp, "d.sqlite3-wal"))
        conn = sqlite3.connect(os.path.join(tmp, "d.sqlite3"))
        names = dict(conn.execute("SELECT pageno, name FROM dbstat"))
        conn.close()
    print(f"{len(txs)} commits in the WAL; the last {min(last, len(txs))}:")
    for pages in txs[-last:]:
        count = collections.Counter(names.get(p, f"page {p}") for p in pages)
        parts = [f"{n} ×{c}" if c > 1 else n for n, c in count.most_common()]
        print(f"{len(pages)} pages: {', '.join(parts)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
