"""Renders run.sh's results (JSON lines {"config", "round", "result"}, result = the RESULT
object of bench_compare_step or train_torch.py) as one markdown table, and checks that the
two sides agree on the initial loss (1e-4 relative) and on the initial gradient norm (1e-3
relative, float32 sums over millions of terms). With several rounds, tok/s is the median
of the rounds, peak RSS the largest and "CPUs busy" (CPU time / wall time of the timed
steps, about the thread count on an idle machine; less means other processes took the
cores) the smallest. Exits 1 when an agreement check fails.

    python3 table.py RESULTS.jsonl [MORE.jsonl ...]
"""
import json
import statistics
import sys

LOSS_TOL, GRAD_NORM_TOL = 1e-4, 1e-3
CONFIG_ORDER = ["tiny", "small", "base"]


def rel(a, b):
    return abs(a - b) / max(abs(b), 1e-30)


def main():
    runs = {}  # (config, threads) -> side -> [result]
    for path in sys.argv[1:]:
        with open(path) as f:
            for line in f:
                if line.strip():
                    r = json.loads(line)
                    key = (r["config"], r["result"]["threads"])
                    runs.setdefault(key, {}).setdefault(r["result"]["side"], []).append(
                        r["result"])
    order = lambda k: (CONFIG_ORDER.index(k[0]) if k[0] in CONFIG_ORDER else 99, k[0], k[1])
    print("| config | threads | loom tok/s | torch tok/s | loom/torch | loom peak RSS MB "
          "| torch peak RSS MB | initial loss loom | initial loss torch | rel. diff "
          "| grad-norm rel. diff | CPUs busy loom / torch |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    ok, missing, worst_loss, worst_grad = True, False, 0.0, 0.0
    for key in sorted(runs, key=order):
        sides = runs[key]
        if set(sides) != {"loom", "torch"}:
            print(f"| {key[0]} | {key[1]} | " + " | ".join(["-"] * 8)
                  + f" | FAIL: only {', '.join(sorted(sides))} ran | - |")
            missing = True
            continue
        loom, torch = sides["loom"], sides["torch"]
        tok = {s: statistics.median(r["tok_s"] for r in sides[s]) for s in sides}
        rss = {s: max(r["peak_rss_mb"] for r in sides[s]) for s in sides}
        busy = {s: min(r["cpu_util"] for r in sides[s]) for s in sides}
        loss_diff = max(rel(a["init_loss"], b["init_loss"]) for a in loom for b in torch)
        grad_diff = max(rel(a["init_grad_norm"], b["init_grad_norm"]) for a in loom for b in torch)
        worst_loss, worst_grad = max(worst_loss, loss_diff), max(worst_grad, grad_diff)
        row_ok = loss_diff <= LOSS_TOL and grad_diff <= GRAD_NORM_TOL
        ok &= row_ok
        print(f"| {key[0]} | {key[1]} | {tok['loom']:.0f} | {tok['torch']:.0f} "
              f"| {tok['loom'] / tok['torch']:.2f} | {rss['loom']:.0f} | {rss['torch']:.0f} "
              f"| {loom[0]['init_loss']:.6f} | {torch[0]['init_loss']:.6f} | {loss_diff:.1e} "
              f"| {grad_diff:.1e}{'' if row_ok else ' FAIL'} "
              f"| {busy['loom']:.2f} / {busy['torch']:.2f} |")
    print()
    verdict = "agree" if ok else "DISAGREE"
    if missing:
        verdict += " where both ran (INCOMPLETE: a run is missing)"
    print(f"agreement check: loom and PyTorch {verdict} (initial loss max rel. diff "
          f"{worst_loss:.1e}, tolerance {LOSS_TOL:.0e}; initial gradient norm max rel. diff "
          f"{worst_grad:.1e}, tolerance {GRAD_NORM_TOL:.0e})")
    sys.exit(0 if ok and not missing else 1)


if __name__ == "__main__":
    main()
