"""Turn a benchmark result into bench/results/latest.md (tables, targets) and latest.png (plot).

Every figure is the median over repeats; a ratio is taken within each repeat (both sides
measured minutes apart under the same machine load) and then the median over repeats.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from pathlib import Path
from typing import Any

POLLAMA = "pollama /api/generate"
PEER = "llama-server"
MIB = 1 << 20


def _median(values: list[float]) -> float | None:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def _fmt(v: float | None, digits: int = 1) -> str:
    return "–" if v is None else f"{v:.{digits}f}"


def _ratio(v: float | None) -> str:
    return "–" if v is None else f"{v:.2f}×"


class Summary:
    def __init__(self, result: dict[str, Any]):
        self.r = result
        self.points = result.get("points", [])
        self.contenders = list(dict.fromkeys(p["contender"] for p in self.points))
        self.clients = sorted({p["clients"] for p in self.points})
        self.tokens = sorted({p["n_predict"] for p in self.points})
        self.by = defaultdict(list)
        for p in self.points:
            self.by[(p["contender"], p["clients"], p["n_predict"])].append(p)
        self.ceiling = {(c["pl"], c["tg"]): c["speed_tg"] for c in result.get("ceiling", [])}

    def metric(self, contender: str, clients: int, n: int, key: str) -> float | None:
        return _median([p[key] for p in self.by.get((contender, clients, n), [])])

    def total(self, contender: str, clients: int, n: int, key: str) -> int:
        return sum(p[key] for p in self.by.get((contender, clients, n), []))

    def ratio(self, a: str, b: str, clients: int, n: int, key: str = "aggregate_tps") -> float | None:
        """Median over repeats of a/b, each ratio within one repeat."""
        pa = {p["repeat"]: p[key] for p in self.by.get((a, clients, n), [])}
        pb = {p["repeat"]: p[key] for p in self.by.get((b, clients, n), [])}
        return _median([pa[k] / pb[k] for k in pa if pb.get(k)])

    def diff(self, a: str, b: str, clients: int, n: int, key: str) -> float | None:
        pa = {p["repeat"]: p[key] for p in self.by.get((a, clients, n), [])}
        pb = {p["repeat"]: p[key] for p in self.by.get((b, clients, n), [])}
        return _median([pa[k] - pb[k] for k in pa if k in pb])

    def vs_ceiling(self, contender: str, clients: int, n: int) -> float | None:
        agg, ceil = self.metric(contender, clients, n, "aggregate_tps"), self.ceiling.get((clients, n))
        return agg / ceil if agg and ceil else None


def write_report(result: dict[str, Any], md_path: Path, png_path: Path) -> str:
    s = Summary(result)
    lines = _header(result)
    for n in s.tokens:
        lines += _throughput_table(s, n)
    lines += _latency_table(s)
    lines += _prefill_table(result)
    lines += _memory_table(result)
    lines += _targets(s, result)
    if result.get("notes"):
        lines += ["", "Notes:", *[f"- {n}" for n in result["notes"]]]
    text = "\n".join(lines) + "\n"
    md_path.write_text(text)
    try:
        _plot(s, png_path)
    except ImportError:
        text += "\n(matplotlib is not installed: no plot)\n"
    return text


def _header(r: dict[str, Any]) -> list[str]:
    m, c = r["machine"], r["config"]
    size = c.get("model_file_bytes", 0) / MIB
    return [
        f"# pollama benchmark, {r['date']} (git {r.get('git', '?')})",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB RAM, Linux {m['kernel']}, "
        f"Python {m['python']}. Load average (1/5/15 min) at start {r['loadavg_start']}, "
        f"at end {r.get('loadavg_end')}: the machine is shared, so absolute figures move; compare ratios.",
        "",
        f"Load: model {c['model']} (Q4_K_M, {size:.0f} MiB file, the same file for every contender), "
        f"{c['threads']} threads, context {c['ctx_per_seq']} per sequence, {c['slots']} slots "
        f"(unified KV), batch {c['batch']}, greedy (temperature 0), raw prompts of ~25 tokens, "
        f"streaming; each client sends {c['requests_each']} requests back to back; "
        f"{c['repeats']} repeat(s) of the whole sweep, medians shown"
        f"{' (QUICK mode)' if r.get('quick') else ''}. Run took {r.get('duration_s', '?')} s.",
        "",
        "Ceiling = llama-batched-bench S_TG (same llama.cpp build and flags, no HTTP, no sampling, "
        "prompt not counted), the most this engine can decode on this machine.",
    ]


def _throughput_table(s: Summary, n: int) -> list[str]:
    head = ["clients", *s.contenders, "ceiling"]
    has_peer = PEER in s.contenders and POLLAMA in s.contenders
    if has_peer:
        head.append("pollama / llama-server")
    if POLLAMA in s.contenders and s.ceiling:
        head.append("pollama / ceiling")
    lines = ["", f"## Aggregate tok/s, {n}-token completions", "", _row(head), _row(["---"] * len(head))]
    for k in s.clients:
        row = [str(k)]
        for c in s.contenders:
            row.append(_fmt(s.metric(c, k, n, "aggregate_tps")))
        row.append(_fmt(s.ceiling.get((k, n))))
        if has_peer:
            row.append(_ratio(s.ratio(POLLAMA, PEER, k, n)))
        if POLLAMA in s.contenders and s.ceiling:
            row.append(_ratio(s.vs_ceiling(POLLAMA, k, n)))
        lines.append(_row(row))
    return lines


def _latency_table(s: Summary) -> list[str]:
    head = [
        "contender",
        "tokens",
        "clients",
        "TTFT p50 ms",
        "TTFT p95 ms",
        "per-stream tok/s",
        "failed",
        "short",
    ]
    lines = ["", "## Latency per request", "", _row(head), _row(["---"] * len(head))]
    for c in s.contenders:
        for n in s.tokens:
            for k in s.clients:
                lines.append(
                    _row(
                        [
                            c,
                            str(n),
                            str(k),
                            _fmt(s.metric(c, k, n, "ttft_p50_ms")),
                            _fmt(s.metric(c, k, n, "ttft_p95_ms")),
                            _fmt(s.metric(c, k, n, "stream_tps_p50")),
                            str(s.total(c, k, n, "failed")),
                            str(s.total(c, k, n, "short")),
                        ]
                    )
                )
    lines.append("")
    lines.append(
        "short = the stream ended before the requested number of tokens (all prompts run to the "
        "limit with greedy decoding, so a short stream was cut off)."
    )
    return lines


def _prefill_table(r: dict[str, Any]) -> list[str]:
    head = ["contender", "prefill tok/s (1k prompt)", "turn-1 TTFT ms", "turn-2 TTFT ms", "turn 2 / turn 1"]
    lines = ["", "## Prefill and prefix reuse", "", _row(head), _row(["---"] * len(head))]
    for c, trials in r.get("prefill", {}).items():
        rate = _median([t["prompt_tokens"] / t["ttft_s"] for t in trials if t["ttft_s"] > 0])
        turns = [t for t in r.get("second_turn", {}).get(c, []) if t.get("turn2_ttft_s")]
        t1 = _median([t["turn1_ttft_s"] * 1000 for t in turns])
        t2 = _median([t["turn2_ttft_s"] * 1000 for t in turns])
        ratio = _median([t["turn2_ttft_s"] / t["turn1_ttft_s"] for t in turns])
        lines.append(_row([c, _fmt(rate), _fmt(t1), _fmt(t2), _fmt(100 * ratio, 0) + "%" if ratio else "–"]))
    lines.append("")
    lines.append(
        "Prefill: a fresh ~1,050-token raw prompt, 1 output token; rate = prompt tokens / TTFT. "
        "Chat: turn 1 is a ~1,050-token user message, turn 2 adds the reply and a short question."
    )
    return lines


def _memory_table(r: dict[str, Any]) -> list[str]:
    head = ["server", "RSS after load + warm-up MiB", "peak RSS MiB"]
    lines = ["", "## Memory", "", _row(head), _row(["---"] * len(head))]
    for name, mem in r.get("memory_loaded", {}).items():
        peak = r.get("memory_end", {}).get(name, {}).get("peak_rss", 0)
        lines.append(_row([name, _fmt(mem["rss"] / MIB, 0), _fmt(peak / MIB, 0)]))
    return lines


def _targets(s: Summary, r: dict[str, Any]) -> list[str]:
    head = ["target (issue 5)", "measured", "holds"]
    rows: list[list[str]] = []
    n = 64 if 64 in s.tokens else (s.tokens[0] if s.tokens else 0)

    def check(name: str, value: float | None, ok: bool | None, text: str) -> None:
        rows.append(
            [
                name,
                text if value is not None else "not measured",
                "–" if ok is None else ("yes" if ok else "NO"),
            ]
        )

    if POLLAMA in s.contenders:
        for k, peer_min, ceil_min in ((1, 1.0, 0.95), (4, 1.2, 0.85), (8, 1.2, 0.85), (16, None, 0.8)):
            if k not in s.clients:
                continue
            if peer_min is not None and PEER in s.contenders:
                v = s.ratio(POLLAMA, PEER, k, n)
                check(
                    f"{k} client(s): ≥ {peer_min}× llama-server", v, v >= peer_min if v else None, _ratio(v)
                )
            v = s.vs_ceiling(POLLAMA, k, n)
            if s.ceiling:
                check(f"{k} client(s): ≥ {ceil_min}× ceiling", v, v >= ceil_min if v else None, _ratio(v))
        if 1 in s.clients and PEER in s.contenders:
            d = s.diff(POLLAMA, PEER, 1, n, "ttft_p50_ms")
            check(
                "1 client: TTFT p50 within 10 ms of llama-server",
                d,
                d <= 10 if d is not None else None,
                f"{_fmt(d)} ms",
            )
        bad = sum(
            s.total(POLLAMA, k, m, "failed") + s.total(POLLAMA, k, m, "short")
            for k in s.clients
            for m in s.tokens
        )
        check(
            "no request truncated or failed (pollama)",
            bad,
            bad == 0,
            f"{bad} of {sum(s.total(POLLAMA, k, m, 'requests') for k in s.clients for m in s.tokens)}",
        )
    turns = [t for t in r.get("second_turn", {}).get(POLLAMA, []) if t.get("turn2_ttft_s")]
    ratio = _median([t["turn2_ttft_s"] / t["turn1_ttft_s"] for t in turns])
    check(
        "second chat turn TTFT ≤ 25% of the first",
        ratio,
        ratio <= 0.25 if ratio else None,
        f"{_fmt(100 * ratio, 0) if ratio else '–'}%",
    )
    mem = r.get("memory_loaded", {}).get("pollama", {}).get("rss")
    kv = r.get("pollama_kv_bytes", 0)
    size = r["config"].get("model_file_bytes", 0)
    if mem and kv:
        budget = size + kv + 200 * MIB
        check(
            "RSS with the model loaded ≤ file + KV + 200 MB",
            mem,
            mem <= budget,
            f"{mem / MIB:.0f} MiB vs {size / MIB:.0f} + {kv / MIB:.0f} + 200 = {budget / MIB:.0f} MiB",
        )
    return ["", f"## Targets ({n}-token completions)", "", _row(head), _row(["---"] * 3), *map(_row, rows)]


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _plot(s: Summary, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import NullFormatter

    fig, axes = plt.subplots(len(s.tokens), 2, figsize=(11, 4 * len(s.tokens)), squeeze=False)
    for row, n in enumerate(s.tokens):
        agg, ttft = axes[row]
        for c in s.contenders:
            xs = [k for k in s.clients if s.metric(c, k, n, "aggregate_tps") is not None]
            agg.plot(xs, [s.metric(c, k, n, "aggregate_tps") for k in xs], marker="o", label=c)
            ttft.plot(xs, [s.metric(c, k, n, "ttft_p50_ms") for k in xs], marker="o", label=c)
        xs = [k for k in s.clients if (k, n) in s.ceiling]
        if xs:
            agg.plot(xs, [s.ceiling[(k, n)] for k in xs], "k--", label="ceiling (batched-bench)")
        agg.set(title=f"aggregate tok/s, {n}-token completions", xlabel="concurrent clients")
        ttft.set(title=f"TTFT p50 (ms, log), {n}-token completions", xlabel="concurrent clients")
        ttft.set_yscale("log")
        for ax in (agg, ttft):
            ax.set_xscale("log", base=2)
            ax.xaxis.set_minor_formatter(NullFormatter())
            ax.set_xticks(s.clients, [str(k) for k in s.clients])
            ax.grid(True, alpha=0.3)
        agg.legend(fontsize=8)
    fig.suptitle(f"pollama vs llama.cpp, {s.r['date']} ({s.r['machine']['cores']} cores)")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
