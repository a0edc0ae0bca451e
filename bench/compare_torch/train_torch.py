"""PyTorch's side of the loom-vs-PyTorch training benchmark (issue 8), the twin of
`bench_compare_step train` (bench/compare_step.cpp): the same batch file, the same initial
weights (loom's checkpoint), the same optimizer settings, the same timing.

    OMP_NUM_THREADS=T OPENBLAS_NUM_THREADS=T python3 train_torch.py --batches B.h5 \\
        --weights W.h5 --threads T --steps S [--warmup K] [--profile]
        [--device cpu|cuda] [--amp bf16]

1. agreement: with dropout off, the label-smoothed loss of batch 0 and the global gradient
   norm of that loss;
2. K warm-up steps, then S timed steps, each: forward, loss, loss.item(), backward,
   clip_grad_norm_, AdamW step (no decay on biases, LayerNorm and embeddings),
   zero_grad(set_to_none=True); step i uses batch i mod N; constant lr (the recipe's).
On cuda the model and batches move to the GPU and each step ends with
torch.cuda.synchronize(); --amp bf16 runs forward and loss under torch.autocast (bf16),
the mixed precision loom's train.precision = "bf16" is to match.
Prints one line `RESULT {json}` with the fields loom prints. --profile: torch.profiler's
table of the timed steps on stderr.
"""
import argparse
import contextlib
import json
import math
import os
import resource
import statistics
import sys
import time

import h5py
import torch

import model as spec


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: kilobytes


def cpu_seconds():
    u = resource.getrusage(resource.RUSAGE_SELF)
    return u.ru_utime + u.ru_stime


def read_batches(f):
    out = []
    for i in range(int(f.attrs["batches"])):
        g = f["batches"][str(i)]
        src, tgt_in, tgt_out = (torch.from_numpy(g[k][()]) for k in ("src", "tgt_in", "tgt_out"))
        out.append((src, tgt_in, tgt_out, int((tgt_out != spec.PAD).sum())))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--batches", required=True)
    ap.add_argument("--weights", required=True)
    ap.add_argument("--threads", type=int, required=True)
    ap.add_argument("--steps", type=int, required=True)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--amp", default="", choices=["", "bf16"])
    args = ap.parse_args()
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        if os.environ.get(var) != str(args.threads):
            sys.exit(f"train_torch.py: set {var}={args.threads} before starting Python "
                     f"(OpenMP and OpenBLAS read it at load time); it is {os.environ.get(var)}")
    torch.set_num_threads(args.threads)

    with h5py.File(args.batches, "r") as f:
        if f.attrs["format"] != "loom-compare-batches":
            sys.exit(f"{args.batches}: not a batch file of `bench_compare_step make-batches`")
        cfg = spec.config_from_toml(f.attrs["model"])
        opt = {k: float(f.attrs[k]) for k in ("lr", "beta1", "beta2", "eps", "weight_decay",
                                               "clip_norm")}
        decay_embeddings = bool(f.attrs["decay_embeddings"])
        batches = read_batches(f)
    model = spec.Transformer(cfg)
    with h5py.File(args.weights, "r") as f:
        spec.load_loom_weights(model, f["model"])
    dev = torch.device(args.device)
    model.to(dev)
    batches = [(s.to(dev), ti.to(dev), to.to(dev), n) for s, ti, to, n in batches]
    # Only built when asked for: torch 1.13 (Debian, CPU only) fails constructing a cuda
    # autocast even when disabled.
    autocast = (torch.autocast("cuda", dtype=torch.bfloat16) if args.amp == "bf16"
                else contextlib.nullcontext())

    def sync():
        if dev.type == "cuda":
            torch.cuda.synchronize()
    params = list(model.parameters())
    adam = torch.optim.AdamW(spec.adamw_groups(model, opt["weight_decay"], decay_embeddings),
                             lr=opt["lr"], betas=(opt["beta1"], opt["beta2"]), eps=opt["eps"],
                             foreach=True)
    base_rss = peak_rss_mb()

    # Agreement values: dropout off, batch 0, the initial weights.
    src, tgt_in, tgt_out, _ = batches[0]
    model.eval()
    loss = spec.sequence_loss(model(src, tgt_in), tgt_out, cfg["label_smoothing"])
    init_loss = loss.item()
    loss.backward()
    init_grad_norm = torch.norm(torch.stack([p.grad.norm() for p in params])).item()
    adam.zero_grad(set_to_none=True)
    model.train()

    def step(batch):
        src, tgt_in, tgt_out, _ = batch
        with autocast:
            loss = spec.sequence_loss(model(src, tgt_in), tgt_out, cfg["label_smoothing"])
        value = loss.item()
        if not math.isfinite(value):
            sys.exit("train_torch.py: non-finite training loss")
        loss.backward()
        if opt["clip_norm"] > 0:
            torch.nn.utils.clip_grad_norm_(params, opt["clip_norm"])
        adam.step()
        adam.zero_grad(set_to_none=True)
        sync()
        return value

    n = len(batches)
    for i in range(args.warmup):
        step(batches[i % n])
    ms, tok_s, total_s, total_tokens, last_loss = [], [], 0.0, 0, 0.0
    profiler = torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) \
        if args.profile else None
    if profiler:
        profiler.__enter__()
    cpu0 = cpu_seconds()
    for i in range(args.steps):
        batch = batches[(args.warmup + i) % n]
        t0 = time.perf_counter()
        last_loss = step(batch)
        dt = time.perf_counter() - t0
        ms.append(dt * 1e3)
        tok_s.append(batch[3] / dt)
        total_s += dt
        total_tokens += batch[3]
    cpu_util = (cpu_seconds() - cpu0) / total_s
    if profiler:
        profiler.__exit__(None, None, None)
        print(profiler.key_averages().table(sort_by="self_cpu_time_total", row_limit=30),
              file=sys.stderr)

    result = {"side": "torch", "threads": args.threads, "steps": args.steps,
              "warmup": args.warmup, "median_ms": statistics.median(ms),
              "tok_s": statistics.median(tok_s), "mean_tok_s": total_tokens / total_s,
              "peak_rss_mb": peak_rss_mb(), "base_rss_mb": base_rss, "cpu_util": cpu_util,
              "init_loss": init_loss, "init_grad_norm": init_grad_norm, "last_loss": last_loss,
              "torch": torch.__version__, "device": args.device, "amp": args.amp,
              "peak_gpu_mb": torch.cuda.max_memory_allocated() / 2**20 if dev.type == "cuda" else 0.0}
    print("RESULT " + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
