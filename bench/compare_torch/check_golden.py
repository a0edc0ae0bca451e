"""Validates model.py against the golden values of an independent PyTorch implementation
(specs/model.md; tests/golden/model_golden.h5): for every case whose config model.py covers,
load the case's weights, run its batch with dropout off and compare logits, label-smoothed
loss, NLL and every parameter gradient. Float64 must match to 1e-6 relative (same maths in
double), float32 logits and loss to 1e-4 and gradients to 1e-3 (specs/model.md's
tolerances). Exits non-zero on any mismatch.

    python3 bench/compare_torch/check_golden.py [tests/golden/model_golden.h5]
"""
import sys

import h5py
import torch
import torch.nn.functional as F

import model as spec

TOLERANCES = {torch.float64: (1e-6, 1e-6), torch.float32: (1e-4, 1e-3)}  # (values, grads)


def rel_err(got, want, floor=1e-30):
    """max |got - want| / max(max |want|, floor): relative to the scale of the whole tensor,
    so small entries of a large tensor do not dominate."""
    want = torch.as_tensor(want, dtype=torch.float64)
    got = got.detach().to(torch.float64)
    return ((got - want).abs().max() / want.abs().max().clamp_min(floor)).item()


def check_case(name, case, dtype):
    cfg = spec.config_from_toml(case.attrs["config"])
    cfg["dropout"] = 0.0
    m = spec.Transformer(cfg).to(dtype)
    spec.load_loom_weights(m, case["model"])
    m.eval()
    src, tgt_in, tgt_out = (torch.from_numpy(case["inputs"][k][()])
                            for k in ("src", "tgt_in", "tgt_out"))
    logits = m(src, tgt_in)
    loss = spec.sequence_loss(logits, tgt_out, cfg["label_smoothing"])
    nll = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), tgt_out.reshape(-1),
                          ignore_index=spec.PAD)
    loss.backward()
    expected = case["expected"]
    errors = {"logits": rel_err(logits, expected["logits"][()]),
              "loss": rel_err(loss, expected["loss"][()]),
              "nll": rel_err(nll, expected["nll"][()])}
    grads = expected["grad"]
    names = {n for n, _ in m.named_parameters()}
    if names != set(grads.keys()):
        raise SystemExit(f"{name}: parameter names differ from the golden file: "
                         f"only here {sorted(names - set(grads))}, "
                         f"only there {sorted(set(grads) - names)}")
    # k_proj biases get a zero gradient in exact arithmetic (softmax ignores a shift shared
    # by all keys); both files hold rounding noise there, so every tensor's scale is at
    # least 1e-3 of the largest gradient of the model.
    floor = 1e-3 * max(abs(grads[n][()]).max() for n in grads)
    grad_err = max(rel_err(p.grad, grads[n][()], floor) for n, p in m.named_parameters())
    value_tol, grad_tol = TOLERANCES[dtype]
    ok = max(errors.values()) <= value_tol and grad_err <= grad_tol
    print(f"  {name:24s} {str(dtype):14s} logits {errors['logits']:.1e}  loss {errors['loss']:.1e}"
          f"  nll {errors['nll']:.1e}  grads {grad_err:.1e}  {'ok' if ok else 'MISMATCH'}")
    return ok


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else "tests/golden/model_golden.h5"
    ok, checked = True, 0
    with h5py.File(path, "r") as f:
        print(f"check_golden: model.py vs {path} (max relative error against the tensor's scale)")
        for name in sorted(f.keys()):
            if "config" not in f[name].attrs:
                continue
            try:
                spec.check_supported(spec.config_from_toml(f[name].attrs["config"]))
            except ValueError as e:
                print(f"  {name:24s} skipped: {e}")
                continue
            for dtype in (torch.float64, torch.float32):
                ok &= check_case(name, f[name], dtype)
            checked += 1
    if checked == 0:
        raise SystemExit("check_golden: no case of the golden file is covered by model.py")
    if not ok:
        raise SystemExit("check_golden: model.py disagrees with the golden values")


if __name__ == "__main__":
    main()
