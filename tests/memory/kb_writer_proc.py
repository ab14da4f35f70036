"""Child process for the crash tests: adds entries forever, printing each acknowledged id.

Usage: python kb_writer_proc.py KB_DIR START [COUNT] [SNAPSHOT_EVERY] [GO_FILE] [PAUSE_S]

With GO_FILE the writer opens the knowledge base, prints "ready" and waits until that file
exists before adding (so readers can attach first); PAUSE_S sleeps between adds.

An id is printed only after `add` returned, i.e. after the record was fsynced; the parent
kills this process with SIGKILL at a random moment and checks that every printed id survived.
Text vectors are random unit vectors so that the child does not spend seconds loading MiniLM;
the durability under test does not depend on what the vector is.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

from corrigible.memory.knowledge_base import KnowledgeBase, KnowledgeBaseConfig
from corrigible.memory.schema import KnowledgeEntry, Provenance


def main() -> None:
    path, start = sys.argv[1], int(sys.argv[2])
    count = int(sys.argv[3]) if len(sys.argv) > 3 else 10**9
    snapshot_every = int(sys.argv[4]) if len(sys.argv) > 4 else 7
    go_file = Path(sys.argv[5]) if len(sys.argv) > 5 else None
    pause_s = float(sys.argv[6]) if len(sys.argv) > 6 else 0.0
    rng = np.random.default_rng(start)
    config = KnowledgeBaseConfig(lock_timeout_s=10.0, snapshot_every=snapshot_every)
    with KnowledgeBase.open(path, config=config) as kb:
        print("ready", flush=True)
        deadline = time.monotonic() + 60
        while go_file is not None and not go_file.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        for i in range(start, start + count):
            vector = rng.normal(size=384).astype(np.float32)
            entry = KnowledgeEntry(
                kind="plan_rule",
                text=f"entry {i}: " + "padding " * int(rng.integers(0, 200)),
                provenance=[Provenance(episode=f"ep-{i}", correction_texts=[f"fix {i}"])],
            )
            entry_id = kb.add(entry, text_embedding=vector / np.linalg.norm(vector))
            print(entry_id, flush=True)
            if pause_s:
                time.sleep(pause_s)


if __name__ == "__main__":
    main()
