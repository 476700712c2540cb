"""tools/make_demo_corpus.py: labels from phone times, and (where the synthesizers are
installed) phone-set coverage, a small corpus end to end, and determinism."""

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from phonemekit.phonemes import CLASSES

REPO = Path(__file__).resolve().parents[1]
TOOL = REPO / "tools" / "make_demo_corpus.py"


def load_generator():
    spec = importlib.util.spec_from_file_location("make_demo_corpus", TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


gen = load_generator()
ENGINES = gen.available_engines()
TEXT = Path("/usr/share/games/fortunes").is_dir() and Path("/usr/share/dict/american-english").is_file()


def needs(*engines):
    missing = [e for e in engines if e not in ENGINES]
    if not TEXT:
        missing.append("fortunes/wamerican")
    return pytest.mark.skipif(bool(missing), reason=f"not installed: {', '.join(missing)} "
                              "(apt-get install festival festlex-cmu festvox-kallpc16k flite "
                              "espeak-ng libespeak-ng-dev fortunes wamerican)")


# ---- no synthesizer needed ------------------------------------------------------------------


def test_a_frame_takes_the_phone_under_its_centre():
    # Frame t is centred at 10 t + 12.5 ms: frame 0 at 12.5 ms, frame 1 at 22.5 ms, ...
    intervals = [("AA", 0.0, 0.02), ("B", 0.02, 0.0225), ("S", 0.0225, 0.05)]
    labels = gen.frame_labels(intervals, 6)
    assert labels.tolist() == ["AA", "S", "S", "S", "[SIL]", "[SIL]"]
    assert labels.dtype == np.dtype("<U5")


def test_a_combined_espeak_unit_shares_its_time_vowels_twice_consonants():
    parts = gen.split_unit(["AA", "R"], 1.0, 1.3)
    assert [p for p, _ in parts] == ["AA", "R"]
    np.testing.assert_allclose([e for _, e in parts], [1.2, 1.3])


def test_speed_and_padding_move_the_phone_times_with_the_signal():
    # A 1 s tone with a phone boundary at 0.5 s; whatever speed and padding realize() picks,
    # the boundary must stay where the tone turns into silence.
    rate = 16000
    wave = np.zeros(rate)
    wave[: rate // 2] = np.sin(2 * np.pi * 440 * np.arange(rate // 2) / rate) * 0.5
    job = dict(seed=[3, 0, 0], speed=1.07)
    x, intervals = gen.realize(job, (wave * 32767).astype(np.int16), rate, [("AA", 0.5), ("[SIL]", 1.0)])
    (label, start, end), = [iv for iv in intervals if iv[0] == "AA"]
    assert np.isclose(end - start, 0.5 * rate / (round(rate * 1.07 / 50) * 50), atol=1e-9)
    # Energy of the 10 ms around the end of AA, before vs after the boundary.
    e = lambda a, b: np.mean(x[int(a * rate) : int(b * rate)].astype(float) ** 2)  # noqa: E731
    assert e(end - 0.03, end - 0.005) > 10 * e(end + 0.005, end + 0.03)


def test_missing_synthesizers_stop_the_tool_with_the_install_command(tmp_path, monkeypatch):
    monkeypatch.setattr(gen, "available_engines", lambda: [])
    with pytest.raises(SystemExit, match="apt-get install"):
        gen.main(["--out", str(tmp_path), "--engines", "flite"])


# ---- with the synthesizers -------------------------------------------------------------------


@pytest.fixture(scope="module")
def sentences():
    every = gen.load_sentences()
    return every[:: max(1, len(every) // 300)][:300]


@needs("festival")
def test_festival_phones_all_map_to_the_40_classes(sentences, tmp_path):
    jobs = [dict(id=f"s{i}", text=s, voice="kal_diphone", stretch=1.0, engine_f0=None)
            for i, s in enumerate(sentences)]
    seen = set()
    for _, wave, rate, phones in gen.synth_festival(jobs, tmp_path):  # maps or raises KeyError
        assert len(wave) > 0 and phones
        seen |= {p for p, _ in phones}
    assert seen <= set(CLASSES) and len(seen) >= 38


@needs("flite")
def test_flite_phones_all_map_to_the_40_classes(sentences, tmp_path):
    job = dict(id="all", text=" ".join(sentences), voice="kal16", stretch=1.0, engine_f0=None)
    wave, rate, phones = gen.synth_flite(job, tmp_path)
    seen = {p for p, _ in phones}
    assert seen <= set(CLASSES) and len(seen) >= 38
    ends = [e for _, e in phones]
    assert ends == sorted(ends) and abs(ends[-1] - len(wave) / rate) < 0.2


@needs("espeak")
def test_espeak_ipa_units_all_map_to_the_40_classes(sentences):
    job = dict(text=" ".join(sentences), voice="en-us", stretch=1.0, engine_f0=None)
    wave, rate, phones = gen.synth_espeak(job)
    seen = {p for p, _ in phones}
    assert seen <= set(CLASSES) and len(seen) >= 38
    ends = [e for _, e in phones]
    assert ends == sorted(ends) and np.isclose(ends[-1], len(wave) / rate)


@needs("festival", "flite", "espeak")
def test_a_small_corpus_is_valid_and_the_same_for_any_number_of_processes(tmp_path):
    args = ["--seed", "7", "--train", "5", "--dev", "2", "--test", "2", "--max-words", "5"]
    a, b = tmp_path / "a", tmp_path / "b"
    for out, jobs in ((a, "2"), (b, "1")):
        subprocess.run([sys.executable, str(TOOL), "--out", str(out), "--jobs", jobs, "--batch", jobs]
                       + args, check=True, capture_output=True)
    files = sorted(p.relative_to(a) for p in a.rglob("*.npy"))
    assert len(files) == 3 * (5 + 2 + 2)
    for f in files:
        assert (a / f).read_bytes() == (b / f).read_bytes(), f"{f} differs between runs"
    from phonemekit.data import AudioDataset

    ds = AudioDataset(root=a, partition="train-clean-100", context=2)
    assert ds.labels is not None and len(ds) > 0
    shutil.rmtree(tmp_path)
