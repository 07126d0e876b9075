#!/usr/bin/env python3
"""How long the disk under a directory takes to make a small write durable.

    contrib/disk-sync.py DIR

Appends 16 KiB to a scratch file in DIR and calls fdatasync, 50 times, and
prints the median and the 90th percentile. postdesk makes every committed
batch durable this way (SQLite's WAL with synchronous=FULL) before it
answers 250, so a batch's latency, and with a fixed number of sessions the
intake rate, includes one of these. The scratch file is removed.
"""

import os
import sys
import tempfile
import time


def main() -> int:
    if len(sys.argv) != 2 or not os.path.isdir(sys.argv[1]):
        print("usage: disk-sync.py DIR (an existing directory)", file=sys.stderr)
        return 2
    fd, path = tempfile.mkstemp(prefix="disk-sync.", dir=sys.argv[1])
    try:
        block = b"\0" * 16384
        times = []
        for _ in range(50):
            os.write(fd, block)
            start = time.perf_counter()
            os.fdatasync(fd)
            times.append(time.perf_counter() - start)
    finally:
        os.close(fd)
        os.unlink(path)
    times.sort()
    print(
        "disk sync (fdatasync of 16 KiB): median %.2f ms, p90 %.2f ms"
        % (times[len(times) // 2] * 1e3, times[len(times) * 9 // 10] * 1e3)
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
