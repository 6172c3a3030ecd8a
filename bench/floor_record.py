"""The floor of a write-ahead, hash-chained audit record built in Python (decision 0240).

    python bench/floor_record.py v2|sealed [N]
    valgrind --tool=callgrind --callgrind-out-file=fl.N.out python bench/floor_record.py v2 N   # N = 2000, 12000
    # (summary(12000) - summary(2000)) / 10000 = instructions per statement

Per statement it does only what any such record needs, fused into one loop with nothing around it: an intent
framed into a memory-mapped journal before "the driver" (length, CRC-32, the record's bytes around its chain
fields), an outcome after it, and the chaining of both into a store file 128 records at a time with one
``write()``. ``v2`` chains as the store's format 2 does (per record: prev, seq, SHA-256, hash); ``sealed`` as a
batch-sealed format would (records carry their seq; one SHA-256 over the batch and a seal line). The intent
carries a 420-byte attribute object, about what a point SELECT's identity, statement and decision take.
"""

from __future__ import annotations

import binascii
import hashlib
import mmap
import os
import random
import struct
import sys
import tempfile
import time
import zlib

SIZE = 1 << 24
BATCH = 128


def main() -> None:
    variant = sys.argv[1] if len(sys.argv) > 1 else "v2"
    if variant not in ("v2", "sealed"):
        raise SystemExit("usage: floor_record.py v2|sealed [N]")
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 100_000
    d = tempfile.mkdtemp(prefix="gdb-floor-")
    jfd = os.open(os.path.join(d, "journal"), os.O_RDWR | os.O_CREAT, 0o600)
    os.ftruncate(jfd, SIZE)
    mm = mmap.mmap(jfd, SIZE)
    out = os.open(os.path.join(d, "store.jsonl"), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    head = b'{"attrs":{' + b"x" * 420 + b'},"kind":"CLIENT","name":"SELECT items","parent_span_id":'
    sha, hexlify, crc, frame = hashlib.sha256, binascii.hexlify, zlib.crc32, struct.Struct("<II").pack
    bits, now = random.getrandbits, time.time_ns
    sealed = variant == "sealed"
    pos, seq, prev = 0, 0, b"0" * 64
    pending: list[tuple[bytes, bytes]] = []
    started = time.perf_counter()
    for _ in range(n):
        span = bits(64)
        a = b'%bnull,"pid":%d,' % (head, 1234)
        b = b'"span_id":"%016x","time":%d,"trace_id":"%032x","type":"intent","v":2}' % (span, now(), bits(128))
        piece = a + b
        size = len(piece)
        mm[pos + 8 : pos + 8 + size] = piece
        mm[pos : pos + 8] = frame(size, crc(piece))
        pos += 8 + size
        if pos > SIZE - 4096:
            pos = 0
        # ... the driver runs the statement here ...
        pending.append((a, b))
        pending.append((
            b'{"attrs":{"db.response.returned_rows":1,"governed_db.masked_cells":0,"governed_db.rows_returned":1},'
            b'"end":%d,"intent":' % now(),
            b'"span_id":"%016x","status":"UNSET","type":"outcome","v":2}' % span))
        if len(pending) >= BATCH:
            lines = []
            if sealed:
                for h, t in pending:
                    seq += 1
                    lines.append(b'%b"seq":%d,%b\n' % (h, seq, t))
                data = b"".join(lines)
                prev = hexlify(sha(prev + data).digest())
                os.write(out, data + b'{"hash":"%b","seq":%d,"type":"seal"}\n' % (prev, seq))
            else:
                for h, t in pending:
                    seq += 1
                    canon = b'%b"prev":"%b","seq":%d,%b' % (h, prev, seq, t)
                    prev = hexlify(sha(canon).digest())
                    lines.append(b'%b,"hash":"%b"}\n' % (canon[:-1], prev))
                os.write(out, b"".join(lines))
            pending.clear()
    elapsed = time.perf_counter() - started
    print(f"{variant}: {elapsed / n * 1e6:.2f} µs a statement over {n} statements")


if __name__ == "__main__":
    main()
