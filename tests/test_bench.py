"""python -m phonemekit bench: runs end to end on any machine and reports what it measured.

Timings are not asserted (the machine may be busy): the structure and the bookkeeping are.
"""

import json

import pytest
import torch

from phonemekit import bench
from phonemekit.data import DEMO_ROOT, AudioDataset


def test_bench_runs_end_to_end_on_a_tiny_corpus_and_writes_json(tmp_path, capsys):
    out = tmp_path / "bench.json"
    args = ["--frames", "3000", "--mean-frames", "100", "--test-frames", "300", "--features", "8",
            "--context", "3", "--batch-size", "64", "--model", "32", "--max-batches", "2",
            "--notebook-batches", "2", "--warmup", "1", "--repeats", "2", "--eval-batch-size", "128",
            "--workdir", str(tmp_path / "work"), "--json", str(out)]
    assert bench.main(args) == 0
    text = capsys.readouterr().out
    for line in ("(a) per-item DataLoader", "(b) FrameLoader", "(c) model alone", "(b)/(a)", "(b)/(c)",
                 "test inference", "machine:"):
        assert line in text
    r = json.loads(out.read_text())
    assert r["machine"]["cores"] >= 1 and r["machine"]["torch"] == torch.__version__
    assert r["corpus"]["synthetic"] and r["corpus"]["features"] == 8
    for k in ("notebook", "kit", "floor"):
        assert r[k]["batches"] == 2 and r[k]["frames"] == 2 * 64
        assert r[k]["frames_per_s"] > 0 and len(r[k]["all_frames_per_s"]) == 2
        assert r[k]["peak_rss_bytes"] > 0
    assert r["kit_over_notebook"] == pytest.approx(r["kit"]["frames_per_s"] / r["notebook"]["frames_per_s"])
    assert r["kit_over_floor"] == pytest.approx(r["kit"]["frames_per_s"] / r["floor"]["frames_per_s"])
    test = AudioDataset(tmp_path / "work" / "corpus", "test-clean", context=3)
    assert r["inference"]["frames"] == len(test)  # every test frame predicted
    assert r["model"]["hidden"] == [32]


def test_bench_data_only_on_a_given_root_times_the_loaders_alone(tmp_path):
    out = tmp_path / "bench.json"
    assert bench.main(["--root", str(DEMO_ROOT), "--data-only", "--context", "3", "--max-batches", "2",
                       "--notebook-batches", "1", "--repeats", "1", "--json", str(out)]) == 0
    r = json.loads(out.read_text())
    assert r["corpus"]["frames"] == len(AudioDataset(DEMO_ROOT, context=3)) and not r["corpus"]["synthetic"]
    assert r["data_only"]["ratio"] > 0 and "kit" not in r and not (tmp_path / "corpus").exists()


def test_bench_help_lists_its_options(capsys):
    from phonemekit.cli import main

    with pytest.raises(SystemExit) as e:
        main(["bench", "--help"])
    assert e.value.code == 0
    text = capsys.readouterr().out
    for option in ("--root", "--frames", "--model", "--max-batches", "--data-only", "--json", "--amp", "--workers"):
        assert option in text


def test_bench_refuses_a_batch_larger_than_the_corpus(tmp_path):
    with pytest.raises(SystemExit, match="fewer than one batch"):
        bench.main(["--frames", "200", "--mean-frames", "50", "--batch-size", "4096", "--model", "small",
                    "--workdir", str(tmp_path)])


def test_scale_lr_follows_the_batch_size():
    assert bench.scale_lr(1e-3, 4096) == pytest.approx(2e-3)  # sqrt(4)
    assert bench.scale_lr(1e-3, 4096, rule="linear") == pytest.approx(4e-3)
    assert bench.scale_lr(1e-3, 512, base_batch=512) == pytest.approx(1e-3)
    with pytest.raises(ValueError, match="sqrt"):
        bench.scale_lr(1e-3, 2048, rule="cubic")
