"""Child process for the concurrency test: follows a knowledge base read-only.

Usage: python kb_reader_proc.py KB_DIR EXPECTED TIMEOUT_S [READY_FILE]

Repeatedly lists the entries (reopening now and then, which also reads the index snapshot the
writer may be replacing) and checks that what it sees is always a consistent prefix of what the
writer wrote: entries "entry 0", "entry 1", ... in order, never fewer than before. Touches
READY_FILE after its first read. Prints "OK <n> <reads> <distinct counts seen>" when it has
seen EXPECTED entries, or exits 1 with the violation.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from corrigible.memory.knowledge_base import KnowledgeBase


def main() -> None:
    path, expected, timeout_s = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    ready_file = Path(sys.argv[4]) if len(sys.argv) > 4 else None
    deadline = time.monotonic() + timeout_s
    seen = 0
    reads = 0
    counts: set[int] = set()
    while time.monotonic() < deadline:
        with KnowledgeBase.open(path, read_only=True) as kb:
            for _ in range(20):
                texts = [entry.text.split(":")[0] for entry in kb.list()]
                reads += 1
                if texts != [f"entry {i}" for i in range(len(texts))]:
                    print(f"FAIL not a prefix: {texts[:5]}...", flush=True)
                    sys.exit(1)
                if len(texts) < seen:
                    print(f"FAIL went back from {seen} to {len(texts)}", flush=True)
                    sys.exit(1)
                seen = len(texts)
                counts.add(seen)
                if ready_file is not None and not ready_file.exists():
                    ready_file.touch()
                if seen >= expected:
                    print(f"OK {seen} {reads} {len(counts)}", flush=True)
                    return
                time.sleep(0.005)
    print(f"FAIL timeout at {seen}/{expected}", flush=True)
    sys.exit(1)


if __name__ == "__main__":
    main()
