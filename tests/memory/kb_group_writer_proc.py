"""Child process for the group-commit crash test: THREADS threads add entries forever.

Usage: python kb_group_writer_proc.py KB_DIR START THREADS

Each thread prints an entry's id only after `add` returned, i.e. after the group fsync that
covered its record; the parent kills this process with SIGKILL at a random moment and checks
that every printed id survived. Text vectors are random unit vectors (no MiniLM to load).
"""

from __future__ import annotations

import sys
import threading

import numpy as np

from corrigible.memory.knowledge_base import KnowledgeBase, KnowledgeBaseConfig
from corrigible.memory.schema import KnowledgeEntry, Provenance


def main() -> None:
    path, start, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    config = KnowledgeBaseConfig(lock_timeout_s=10.0, snapshot_every=13)
    print_lock = threading.Lock()
    with KnowledgeBase.open(path, config=config) as kb:

        def work(slot: int) -> None:
            rng = np.random.default_rng(start + slot)
            for i in range(start + slot, start + 10**9, threads):
                vector = rng.normal(size=384).astype(np.float32)
                entry = KnowledgeEntry(
                    kind="plan_rule",
                    text=f"entry {i}: " + "padding " * int(rng.integers(0, 200)),
                    provenance=[Provenance(episode=f"ep-{i}", correction_texts=[f"fix {i}"])],
                )
                entry_id = kb.add(entry, text_embedding=vector / np.linalg.norm(vector))
                with print_lock:
                    print(entry_id, flush=True)

        workers = [
            threading.Thread(target=work, args=(slot,), daemon=True) for slot in range(threads)
        ]
        for worker in workers:
            worker.start()
        with print_lock:  # one line at a time: an unlocked print interleaved with an id
            print("ready", flush=True)
        for worker in workers:
            worker.join()


if __name__ == "__main__":
    main()
