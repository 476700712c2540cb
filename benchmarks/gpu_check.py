"""Every CUDA-only branch of the kit, on one GPU, in a few minutes: one table, exit 1 on any failure.

    python benchmarks/gpu_check.py                  # on a GPU machine (Colab, a lab box)
    python benchmarks/gpu_check.py --skip-bench     # without the speed benchmark (faster)
    python benchmarks/gpu_check.py --json out.json  # the table as JSON too

What it runs, each as a student would, on the demo corpus (data/demo) unless --root is given:
  fp16       fit 2 epochs with amp="fp16" (GradScaler, fused AdamW)
  bf16       fit 2 epochs with amp="bf16" (where the GPU has native bf16: compute capability >= 8)
  resume     a checkpoint written on the CPU, resumed on the GPU under fp16 with more epochs
  compile    fit 1 epoch with compile=True
  resident   data on the GPU (resident=True) and streamed from pinned host memory (resident=False),
             the same frames and order: the same validation accuracy
  predict    predict() on the GPU agrees with validation on every dev frame
  ctc        HW3P2: fit 2 epochs of the CTC recipe under AMP, greedy and beam decoding
  beam       HW3P2: torchaudio's cuda_ctc_decoder (the kit's backend="cuda") on a trained model's dev
             output against the CPU beam (the same strings, or better-scoring ones), and the test set's
             size (2,620 utterances x 317 frames) decoded at beam 50 (target: 5 s or less)
  bench      the speed benchmark (phonemekit.bench): the kit against the course notebook's pipeline
Nothing of the CPU test suite depends on it.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import torch  # noqa: E402

from phonemekit.config import load_recipe  # noqa: E402
from phonemekit.data import AudioDataset, default_root  # noqa: E402
from phonemekit.submit import predict  # noqa: E402
from phonemekit.train import fit, load_checkpoint  # noqa: E402


def frame_config(root, folder, **kw):
    base = dict(root=str(root), context=10, hidden=[1024, 512], epochs=2, batch_size=1024, lr=2e-3,
                scheduler="cosine", warmup_epochs=1, device="cuda", log_every=20, checkpoint_dir=str(folder))
    return load_recipe("cpu-demo").replace(**{**base, **kw})


def run_fit(config, **kw):
    return fit(config, progress=False, verbose=False, **kw)


def check_fp16(root, tmp):
    r = run_fit(frame_config(root, tmp / "fp16", amp="fp16"))
    assert r.history.val_acc.iloc[-1] > 0.3, r.history
    return f"val acc {r.history.val_acc.iloc[-1]:.2%}, {r.history.frames_per_s.iloc[-1]:,.0f} frames/s"


def check_bf16(root, tmp):
    if torch.cuda.get_device_capability() < (8, 0):
        return "skipped: no native bf16 on this GPU"
    r = run_fit(frame_config(root, tmp / "bf16", amp="bf16"))
    assert r.history.val_acc.iloc[-1] > 0.3, r.history
    return f"val acc {r.history.val_acc.iloc[-1]:.2%}, {r.history.frames_per_s.iloc[-1]:,.0f} frames/s"


def check_resume(root, tmp):
    cpu = frame_config(root, tmp / "resume", device="cpu", amp="off", epochs=1, subset=0.3)
    run_fit(cpu)
    r = run_fit(cpu.replace(device="cuda", amp="fp16", epochs=3), resume=True)
    assert list(r.history.epoch) == [1, 2, 3], r.history
    ckpt = torch.load(tmp / "resume" / "last.pt", weights_only=True, map_location="cpu")
    assert ckpt["optimizer"]["param_groups"][0].get("fused") is True
    return f"CPU epoch 1 -> GPU epochs 2-3 (fused AdamW, GradScaler), val acc {r.history.val_acc.iloc[-1]:.2%}"


def check_compile(root, tmp):
    r = run_fit(frame_config(root, tmp / "compile", compile=True, epochs=1))
    return f"val acc {r.history.val_acc.iloc[-1]:.2%}, epoch {r.history.epoch_time.iloc[-1]:.1f} s (compile included)"


def check_resident(root, tmp):
    a = run_fit(frame_config(root, tmp / "res", resident=True, amp="off"))
    b = run_fit(frame_config(root, tmp / "stream", resident=False, amp="off"))
    diff = abs(a.history.val_acc.iloc[-1] - b.history.val_acc.iloc[-1])
    assert diff < 0.01, (a.history, b.history)
    return (f"resident {a.history.frames_per_s.iloc[-1]:,.0f} frames/s, streaming "
            f"{b.history.frames_per_s.iloc[-1]:,.0f} frames/s, val acc differs by {diff:.3%}")


def check_predict(root, tmp):
    config = frame_config(root, tmp / "predict", amp="auto")
    r = run_fit(config)
    model, _, _ = load_checkpoint(tmp / "predict" / "best.pt", device="cuda")
    dev = AudioDataset(root, "dev-clean", context=config.context)
    acc = (predict(model, dev).cpu() == dev.labels.long()).sum().item() / len(dev)
    assert acc == r.best, (acc, r.best)
    return f"predict = validation on all {len(dev):,} dev frames ({acc:.2%})"


def check_ctc(root, tmp):
    from phonemekit.ctc_submit import predict_ctc
    from phonemekit.sequences import UtteranceDataset

    config = load_recipe("ctc-demo").replace(root=str(root), epochs=2, device="cuda",
                                             checkpoint_dir=str(tmp / "ctc"))
    r = run_fit(config)
    model, _, _ = load_checkpoint(tmp / "ctc" / "best.pt", device="cuda")
    dev = UtteranceDataset(root, "dev-clean")
    t0 = time.perf_counter()
    greedy = predict_ctc(model, dev, device="cuda")
    t1 = time.perf_counter()
    beam = predict_ctc(model, dev, device="cuda", beam_width=5)
    t2 = time.perf_counter()
    assert len(greedy) == len(beam) == len(dev)
    return (f"val dist {r.history.val_dist.iloc[-1]:.2f}; greedy {len(dev) / (t1 - t0):,.0f} utt/s, "
            f"beam 5 {len(dev) / (t2 - t1):,.0f} utt/s")


def ctc_log_likelihood(lp, lengths, strings):
    """log P(string | log-probs) under CTC, per utterance (CPU, float64)."""
    from phonemekit.phonemes import from_string

    targets = [torch.tensor(from_string(s), dtype=torch.long) for s in strings]
    return -torch.nn.functional.ctc_loss(
        lp.double().log_softmax(-1).transpose(0, 1), torch.cat(targets), lengths,
        torch.tensor([len(t) for t in targets]), reduction="none", zero_infinity=False)


def check_beam(root, tmp):
    from phonemekit.ctc_submit import ctc_test_dataset
    from phonemekit.decode import _cuda_factory, beam_decode
    from phonemekit.sequences import SequenceLoader

    if _cuda_factory() is None:
        raise RuntimeError("torchaudio's cuda_ctc_decoder cannot load: install the torchaudio built for this torch")
    config = load_recipe("ctc-demo").replace(root=str(root), epochs=12, device="cuda", checkpoint_dir=str(tmp / "beam"))
    run_fit(config)
    model, config, ckpt = load_checkpoint(tmp / "beam" / "best.pt", device="cuda")
    dev = ctc_test_dataset(config, root, stats=ckpt.get("stats"), partition="dev-clean")
    lps = []
    with torch.inference_mode():
        for x, xl, *_ in SequenceLoader(dev, 32, shuffle=False, bucketing=False, device="cuda"):
            lp, ol = model(x, xl)
            lps += [lp[i, : int(n)].float() for i, n in enumerate(ol)]
    lengths = torch.tensor([len(x) for x in lps])
    lp = torch.nn.utils.rnn.pad_sequence(lps, batch_first=True)
    gpu = beam_decode(lp, lengths, 20, backend="cuda")
    cpu = beam_decode(lp.cpu(), lengths, 20, backend="cpu", workers=None)
    s_gpu, s_cpu = ctc_log_likelihood(lp.cpu(), lengths, gpu), ctc_log_likelihood(lp.cpu(), lengths, cpu)
    differ = [i for i in range(len(gpu)) if gpu[i] != cpu[i]]
    worse = [i for i in differ if s_gpu[i] < s_cpu[i] - 1e-6 * abs(float(s_cpu[i]))]
    assert not worse, (f"{len(worse)} of {len(gpu)} GPU strings score below the CPU beam's, e.g. utterance "
                       f"{worse[0]}: {gpu[worse[0]]!r} {float(s_gpu[worse[0]]):.3f} vs {cpu[worse[0]]!r} "
                       f"{float(s_cpu[worse[0]]):.3f}")
    # the test set's size: dev's output laid end to end and cut into 2,620 utterances of 317 frames
    n, frames = 2620, 317
    stream = torch.cat(lps)
    tiled = stream.repeat(-(-n * frames // len(stream)), 1)[: n * frames].reshape(n, frames, -1).contiguous()
    full = torch.full((n,), frames, device="cuda")
    beam_decode(tiled[:64], full[:64], 50, backend="cuda")  # warm-up: the decoder's buffers
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    out = beam_decode(tiled, full, 50, backend="cuda")
    seconds = time.perf_counter() - t0
    assert len(out) == n
    return (f"dev: {len(gpu) - len(differ)}/{len(gpu)} strings as the CPU beam 20, {len(differ)} others scoring "
            f"as well or better; {n} x {frames} frames at beam 50 in {seconds:.2f} s "
            f"({'within' if seconds <= 5 else 'OVER'} the 5 s target)")


def check_bench(root, tmp):
    from phonemekit.bench import main as bench

    out = tmp / "bench.json"
    rc = bench(["--frames", "2000000", "--max-batches", "300", "--repeats", "2", "--json", str(out)])
    assert rc in (0, None), rc
    return f"the benchmark's table is printed above ({out.stat().st_size} bytes of JSON)"


CHECKS = {"fp16": check_fp16, "bf16": check_bf16, "resume": check_resume, "compile": check_compile,
          "resident": check_resident, "predict": check_predict, "ctc": check_ctc, "beam": check_beam,
          "bench": check_bench}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    p.add_argument("--root", help="data in the Kaggle layout (default: the demo corpus)")
    p.add_argument("--only", nargs="+", choices=list(CHECKS), help="run these checks only")
    p.add_argument("--skip-bench", action="store_true", help="leave out the speed benchmark")
    p.add_argument("--json", metavar="FILE", help="also write the table as JSON")
    args = p.parse_args(argv)
    if not torch.cuda.is_available():
        print("gpu_check: no CUDA GPU here; run it on a GPU machine (Colab: Runtime > Change runtime type > GPU)")
        return 2
    root = Path(args.root) if args.root else default_root(verbose=False)
    names = args.only or [n for n in CHECKS if not (n == "bench" and args.skip_bench)]
    gpu = torch.cuda.get_device_name()
    print(f"gpu_check: {gpu}, torch {torch.__version__}, data {root}")
    rows = []
    with tempfile.TemporaryDirectory(prefix="phonemekit-gpu-check-") as tmp:
        for name in names:
            t0 = time.perf_counter()
            try:
                detail, ok = CHECKS[name](root, Path(tmp)), True
            except Exception as e:  # every check runs, and the table says what broke
                traceback.print_exc()
                detail, ok = f"{type(e).__name__}: {str(e).splitlines()[0][:160] if str(e) else ''}", False
            rows.append({"check": name, "ok": ok, "seconds": round(time.perf_counter() - t0, 1), "detail": str(detail)})
            print(f"  {name:<9} {'ok' if ok else 'FAILED':<7} {rows[-1]['seconds']:>6.1f} s  {detail}", flush=True)
    print(f"\n{'check':<10}{'result':<8}{'seconds':>8}  detail   [{gpu}]")
    for r in rows:
        print(f"{r['check']:<10}{'ok' if r['ok'] else 'FAILED':<8}{r['seconds']:>8.1f}  {r['detail']}")
    if args.json:
        Path(args.json).write_text(json.dumps({"gpu": gpu, "torch": str(torch.__version__), "rows": rows}, indent=2))
    return 0 if all(r["ok"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
