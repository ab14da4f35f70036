"""Benchmarks run by `corrigible bench NAME`, kept apart from the library code they measure.

One module per thing measured; each exposes `run_bench(quick: bool)`, which yields JSON-able rows:

| module | name | measures |
|-|-|-|
| `sim_throughput` | `sim` | physics and `env.step` throughput, render rate, per engine |
| `perception` | `perception` | camera perception against ground truth, per engine |
| `knowledge_base` | `kb` | knowledge-base retrieval latency and durable insert throughput |
| `event_emulator` | `events` | event-camera emulator throughput on a fixed rendered clip |
| `sandbox` | `sandbox` | sandbox latency; hostile programs and instructions, per class |
| `bridge` | `bridge` | rosbridge correction round trip and joint-state rate, 1 and 10 clients |
| `scale` | `scale` | episodes per second serial and on Ray (1 and 2 workers), sweep cost model |
| `speech` | `speech` | spoken corrections: WER, route and effect agreement with typed, RTF |
| `correction_latency` | `latency` | correction arrival -> first arm step of the redo, p50/p95/max |
| `llm` | `llm` | bundled code models on their server: load, tokens/s, plan latency |

Library packages never import this package.
"""
