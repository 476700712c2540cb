"""Make a phone-aligned speech corpus in the Kaggle HW1P2 layout, from text, with real synthesizers.

    python3 tools/make_demo_corpus.py --out data/demo --seed 0             # the shipped demo
    python3 tools/make_demo_corpus.py --out data/synth --hours 2 --jobs 8  # a bigger one

English sentences (from Debian's `fortunes`, keeping those whose every word is in `wamerican`)
are spoken by festival, flite and espeak-ng voices. Each synthesizer reports when every phone
it produced ends, in the signal it produced, so the frame labels are exact. The waveform then
gets a random speed, leading/trailing silence, channel (band-pass, EQ, reverb), additive noise
at a random SNR and a random gain, and becomes log-mel frames by phonemekit.features.logmel,
the recipe of the course data. Output, as Kaggle ships HW1P2:

    <out>/train-clean-100/{mfcc,transcript}/<id>.npy   float32 (T, 28); <U5 (T+2,) [SOS] .. [EOS]
    <out>/dev-clean/{mfcc,transcript}/<id>.npy
    <out>/test-clean/mfcc/<id>.npy
    <out>/test-clean/transcript/<id>.npy               the test answers (the dataset ignores them
                                                       for test unless asked, so a notebook can
                                                       score its own submission)
    <out>/<partition>/transcript-hw3p2/<id>.npy        HW3P2's sequence transcript (test answers
                                                       included): [SOS], the phones in order,
                                                       [EOS]; not time-aligned

The HW3P2 sequence is the exact one the synthesizer spoke (two identical phones in a row stay
two), with silences merged into one [SIL]. For a corpus made before it was written,
`--derive-sequences` derives it from the frame transcripts by collapsing runs of one class,
which merges identical adjacent phones into one.

Dev and test are spoken by other voices than train, as LibriSpeech keeps speakers apart.
The output depends only on --seed and the counts, not on --jobs.

Needs (Debian): apt-get install festival festlex-cmu festvox-kallpc16k festvox-kdlpc16k
festvox-us-slt-hts flite espeak-ng libespeak-ng-dev fortunes wamerican
"""

import argparse
import ctypes
import json
import multiprocessing
import os
import pickle
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import signal
from scipy.io import wavfile

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from phonemekit.features import logmel, resample  # noqa: E402
from phonemekit.phonemes import CLASSES, EOS, SOS  # noqa: E402

SIL = "[SIL]"
SR = 16000
SEQUENCE_DIR = "transcript-hw3p2"  # beside HW1P2's transcript/, which keeps Kaggle's name
PARTITIONS = ("train-clean-100", "dev-clean", "test-clean")

# --------------------------------------------------------------------------------------------
# Voices. speaker: the person behind the voice (festival kal and flite kal16 are both Kevin
# Lenzo); a speaker belongs to one partition only. espeak-ng variants count as speakers.
# f0: the range of mean pitch (Hz) drawn per utterance; None where the voice has no control.


@dataclass(frozen=True)
class Voice:
    engine: str  # festival | flite | espeak
    name: str  # as the engine spells it
    speaker: int  # first field of the utterance id
    partition: str
    f0: tuple | None


TRAIN, DEV, TEST = PARTITIONS
VOICES = [
    Voice("festival", "kal_diphone", 1001, TRAIN, (85, 140)),
    Voice("flite", "kal16", 1001, TRAIN, (85, 140)),
    Voice("flite", "awb", 1002, TRAIN, (85, 140)),
    Voice("flite", "rms", 1003, TRAIN, (80, 130)),
    Voice("espeak", "en-us+m1", 2001, TRAIN, (30, 70)),  # espeak pitch is 0-99, not Hz
    Voice("espeak", "en-us+m3", 2003, TRAIN, (30, 70)),
    Voice("espeak", "en-us+m5", 2005, TRAIN, (30, 70)),
    Voice("espeak", "en-us+f1", 2101, TRAIN, (40, 80)),
    Voice("espeak", "en-us+f3", 2103, TRAIN, (40, 80)),
    Voice("espeak", "en-us+klatt", 2201, TRAIN, (30, 70)),
    Voice("festival", "ked_diphone", 1101, DEV, (85, 140)),
    Voice("espeak", "en-us+m2", 2002, DEV, (30, 70)),
    Voice("espeak", "en-us+f2", 2102, DEV, (40, 80)),
    Voice("festival", "cmu_us_slt_arctic_hts", 1201, TEST, None),
    Voice("flite", "slt", 1201, TEST, (150, 220)),
    Voice("espeak", "en-us+m4", 2004, TEST, (30, 70)),
    Voice("espeak", "en-us+f4", 2104, TEST, (40, 80)),
]


def available_engines():
    """Engines whose programs/libraries are installed here."""
    found = []
    if shutil.which("festival"):
        found.append("festival")
    if shutil.which("flite"):
        found.append("flite")
    try:
        ctypes.CDLL("libespeak-ng.so.1")
        found.append("espeak")
    except OSError:
        pass
    return found


# --------------------------------------------------------------------------------------------
# Phone sets -> the 40 HW1P2 classes.

# Festival and flite speak the CMU "radio" phone set, ARPAbet plus a few allophones.
RADIO = {"pau": SIL, "h#": SIL, "brth": SIL, "ax": "AH", "axr": "ER", "dx": "T", "hv": "HH",
         "el": "L", "em": "M", "en": "N", "nx": "N"}


def radio_to_class(phone):
    label = RADIO.get(phone, phone.upper())
    if label not in CLASSES:
        raise KeyError(f"radio phone {phone!r} has no HW1P2 class; add it to RADIO")
    return label


# espeak-ng reports IPA, sometimes several phones in one event ("ɑːɹ"). Longest match first;
# stress marks, length marks and the syllabic diacritic carry no class of their own.
IPA = {
    "tʃ": ["CH"], "dʒ": ["JH"], "aɪ": ["AY"], "aʊ": ["AW"], "eɪ": ["EY"], "oʊ": ["OW"],
    "əʊ": ["OW"], "ɔɪ": ["OY"], "ɜɹ": ["ER"], "ɝ": ["ER"], "ɚ": ["ER"], "ɜ": ["ER"],
    "ɑ": ["AA"], "ɒ": ["AA"], "a": ["AA"], "ɔ": ["AO"], "æ": ["AE"], "ʌ": ["AH"], "ə": ["AH"],
    "ɐ": ["AH"], "ɛ": ["EH"], "e": ["EH"], "ɪ": ["IH"], "ᵻ": ["IH"], "i": ["IY"], "ʊ": ["UH"],
    "u": ["UW"], "o": ["OW"],
    "b": ["B"], "d": ["D"], "ð": ["DH"], "f": ["F"], "ɡ": ["G"], "g": ["G"], "h": ["HH"],
    "j": ["Y"], "k": ["K"], "l": ["L"], "ɫ": ["L"], "m": ["M"], "n": ["N"], "ŋ": ["NG"],
    "p": ["P"], "ɹ": ["R"], "r": ["R"], "s": ["S"], "ʃ": ["SH"], "t": ["T"], "θ": ["TH"],
    "v": ["V"], "w": ["W"], "ʍ": ["W"], "z": ["Z"], "ʒ": ["ZH"], "ɾ": ["T"], "ʔ": ["T"],
    "x": ["HH"],
}
IPA_IGNORED = "ˈˌː\u0329\u032f"  # stress, length, syllabic, non-syllabic
VOWELS = {"AA", "AE", "AH", "AO", "AW", "AY", "EH", "ER", "EY", "IH", "IY", "OW", "OY", "UH", "UW"}


def ipa_to_classes(unit):
    """'ɑːɹ' -> ['AA', 'R']; '' (espeak's pause) -> ['[SIL]']."""
    s = "".join(c for c in unit if c not in IPA_IGNORED)
    if not s or s == "_":
        return [SIL]
    out, i = [], 0
    while i < len(s):
        for n in (2, 1):
            if s[i : i + n] in IPA:
                out += IPA[s[i : i + n]]
                i += n
                break
        else:
            raise KeyError(f"IPA symbol {s[i]!r} (U+{ord(s[i]):04X}) in espeak unit {unit!r} "
                           "has no HW1P2 class; add it to IPA")
    return out


def split_unit(labels, start, end):
    """Share one event's time among its phones, a vowel counting twice a consonant."""
    w = np.array([2.0 if p in VOWELS else 1.0 for p in labels])
    edges = start + (end - start) * np.concatenate([[0.0], np.cumsum(w) / w.sum()])
    return [(p, float(e)) for p, e in zip(labels, edges[1:])]


# --------------------------------------------------------------------------------------------
# Text.

FORTUNES = ("fortunes literature wisdom people humorists education science platitudes pets food "
            "love work miscellaneous kids magic law medicine sports computers songs-poems riddles "
            "pratchett tao goedel news paradoxum").split()
FORTUNE_DIR = Path("/usr/share/games/fortunes")
WORDS = Path("/usr/share/dict/american-english")


def load_sentences(max_words=16):
    """Sorted, unique English sentences of 3..max_words dictionary words."""
    if not WORDS.is_file() or not FORTUNE_DIR.is_dir():
        raise FileNotFoundError(f"need {FORTUNE_DIR} and {WORDS}: apt-get install fortunes wamerican")
    words = set(WORDS.read_text(encoding="utf8").split())
    sentences = set()
    for name in FORTUNES:
        path = FORTUNE_DIR / name
        if not path.is_file():
            continue
        for entry in path.read_text(encoding="utf8", errors="replace").split("\n%\n"):
            lines = [ln.strip() for ln in entry.split("\n") if not ln.strip().startswith("--")]
            body = re.sub(r"\s+", " ", " ".join(lines))
            for s in re.split(r"(?<=[.!?])\s+", body):
                s = s.strip()
                if not re.fullmatch(r"[A-Z][A-Za-z ,;:'\-]*[a-z][.!?]", s):
                    continue
                ws = re.findall(r"[A-Za-z']+", s)
                if 3 <= len(ws) <= max_words and all(w in words or w.lower() in words for w in ws):
                    sentences.add(s)
    return sorted(sentences)


# --------------------------------------------------------------------------------------------
# Synthesis: each returns (int16 or float wave, sample rate, [(class, end seconds), ...]).


def synth_festival(jobs, tmp):
    """One festival process speaks a batch of jobs of one voice (startup costs ~0.3 s)."""
    voice = jobs[0]["voice"]
    lines = [f"(voice_{voice})"]
    if jobs[0]["engine_f0"] is not None:
        lines.append("(define (set-f0 m) (set! int_lr_params (list (list 'target_f0_mean m) "
                     "(list 'target_f0_std (/ m 7)) (list 'model_f0_mean 170) (list 'model_f0_std 34))))")
    lines.append(
        "(define (speak text wav)"
        "  (let ((utt (utt.synth (eval (list 'Utterance 'Text text)))))"
        "    (utt.save.wave utt wav 'riff)"
        "    (format t \"BEGIN %s\\n\" wav)"
        "    (mapcar (lambda (s) (format t \"%s %f\\n\" (item.name s) (item.feat s 'end)))"
        "            (utt.relation.items utt 'Segment))"
        "    (format t \"END\\n\")))")
    for j in jobs:
        text = j["text"].replace("\\", " ").replace('"', " ")
        lines.append(f"(Parameter.set 'Duration_Stretch {j['stretch']:.4f})")
        if j["engine_f0"] is not None:
            lines.append(f"(set-f0 {j['engine_f0']:.1f})")
        lines.append(f'(speak "{text}" "{tmp}/{j["id"]}.wav")')
    script = Path(tmp) / f"{jobs[0]['id']}.scm"
    script.write_text("\n".join(lines) + "\n")
    out = subprocess.run(["festival", "-b", str(script)], capture_output=True, text=True, check=True)
    results, cur = {}, None
    for line in out.stdout.splitlines():
        if line.startswith("BEGIN "):
            cur = Path(line[6:]).stem
            results[cur] = []
        elif line == "END":
            cur = None
        elif cur is not None:
            name, end = line.split()
            results[cur].append((radio_to_class(name), float(end)))
    for j in jobs:
        if j["id"] not in results:
            raise RuntimeError(f"festival gave no segments for {j['id']}: {out.stderr[-500:]}")
        rate, wave = wavfile.read(f"{tmp}/{j['id']}.wav")
        yield j, wave, rate, results[j["id"]]


def synth_flite(job, tmp):
    wav = f"{tmp}/{job['id']}.wav"
    cmd = ["flite", "-voice", job["voice"], "--setf", f"duration_stretch={job['stretch']:.4f}"]
    if job["engine_f0"] is not None:
        cmd += ["--setf", f"int_f0_target_mean={job['engine_f0']:.1f}"]
    out = subprocess.run(cmd + ["-t", job["text"], "-o", wav, "-psdur"],
                         capture_output=True, text=True, check=True)
    phones = [(radio_to_class(p), float(t)) for p, t in
              (item.rsplit(":", 1) for item in out.stdout.split())]
    rate, wave = wavfile.read(wav)
    return wave, rate, phones


class _EspeakEventId(ctypes.Union):
    _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p), ("string", ctypes.c_char * 8)]


class _EspeakEvent(ctypes.Structure):  # espeak_EVENT in speak_lib.h
    _fields_ = [("type", ctypes.c_int), ("unique_identifier", ctypes.c_uint),
                ("text_position", ctypes.c_int), ("length", ctypes.c_int),
                ("audio_position", ctypes.c_int), ("sample", ctypes.c_int),
                ("user_data", ctypes.c_void_p), ("id", _EspeakEventId)]


_ESPEAK = {}  # per process: the library, its sample rate, the callback and its buffers
_EVENT_PHONEME, _EVENT_LIST_END = 7, 0


def _espeak():
    if not _ESPEAK:
        lib = ctypes.CDLL("libespeak-ng.so.1")
        # AUDIO_OUTPUT_SYNCHRONOUS; options: phoneme events, spelled in IPA.
        rate = lib.espeak_Initialize(2, 0, None, 0x0001 | 0x0002)
        if rate <= 0:
            raise RuntimeError("espeak_Initialize failed: is espeak-ng-data installed?")
        chunks, events = [], []

        def on_audio(wav, n, ev):
            if n > 0:
                chunks.append(np.ctypeslib.as_array(wav, (n,)).copy())
            i = 0
            while ev[i].type != _EVENT_LIST_END:
                if ev[i].type == _EVENT_PHONEME:
                    # .sample counts samples from the start of the synthesis: exact timing.
                    events.append((ev[i].sample, bytes(ev[i].id.string).split(b"\0")[0].decode("utf8")))
                i += 1
            return 0

        callback = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int,
                                    ctypes.POINTER(_EspeakEvent))(on_audio)
        lib.espeak_SetSynthCallback(callback)
        _ESPEAK.update(lib=lib, rate=rate, callback=callback, chunks=chunks, events=events)
    return _ESPEAK


def espeak_events(text, voice, wpm=175, pitch=None):
    """(int16 wave, rate, [(sample, IPA unit), ...]) for text spoken by an espeak-ng voice."""
    es = _espeak()
    lib = es["lib"]
    es["chunks"].clear()
    es["events"].clear()
    if lib.espeak_SetVoiceByName(voice.encode()) != 0:
        raise RuntimeError(f"espeak-ng has no voice {voice!r}")
    lib.espeak_SetParameter(1, int(wpm), 0)  # espeakRATE, words per minute
    if pitch is not None:
        lib.espeak_SetParameter(3, int(pitch), 0)  # espeakPITCH, 0-99
    data = text.encode("utf8")
    # espeak_Synth(text, size, position, POS_CHARACTER, end_position, espeakCHARS_UTF8, ...)
    lib.espeak_Synth(data, len(data) + 1, 0, 1, 0, 1, None, None)
    lib.espeak_Synchronize()
    wave = np.concatenate(es["chunks"]) if es["chunks"] else np.zeros(0, np.int16)
    return wave, es["rate"], list(es["events"])


def in_fresh_process(fn, *args):
    """fn(*args) in a forked child, whose result comes back pickled through a pipe.

    libespeak-ng carries state from one text into the next (its output drifts by a few samples
    per call), so each utterance gets a freshly initialised library, as a new process has."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: compute, send, and leave without running any cleanup
        os.close(read_end)
        try:
            payload = pickle.dumps((True, fn(*args)))
        except BaseException as e:  # noqa: BLE001 - every failure goes back to the parent
            payload = pickle.dumps((False, repr(e)))
        with os.fdopen(write_end, "wb") as f:
            f.write(payload)
        os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as f:
        ok, result = pickle.loads(f.read())
    os.waitpid(pid, 0)
    if not ok:
        raise RuntimeError(f"espeak-ng failed: {result}")
    return result


def synth_espeak(job):
    wpm = 175 / job["stretch"]
    wave, rate, events = in_fresh_process(espeak_events, job["text"], job["voice"], wpm,
                                          job["engine_f0"])
    # An event marks where a unit starts; it lasts until the next one (or the end of audio).
    phones = [(SIL, events[0][0] / rate)] if events and events[0][0] > 0 else []
    starts = [s for s, _ in events] + [len(wave)]
    for (start, unit), end in zip(events, starts[1:]):
        if end > start:
            phones += split_unit(ipa_to_classes(unit), start / rate, end / rate)
    return wave, rate, phones


# --------------------------------------------------------------------------------------------
# Acoustic variety. Every random choice comes from the job's own generator.


def colored_noise(n, beta, rng):
    """Noise with a 1/f^beta power spectrum (0 white, 1 pink, 2 brown), unit power."""
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.fft.rfftfreq(n)
    f[0] = f[1]
    x = np.fft.irfft(spec / f ** (beta / 2), n)
    return x / (np.sqrt(np.mean(x**2)) + 1e-12)


def peaking_eq(freq, gain_db, q):
    """RBJ cookbook peaking biquad as second-order sections."""
    a = 10 ** (gain_db / 40)
    w = 2 * np.pi * freq / SR
    alpha = np.sin(w) / (2 * q)
    b = [1 + alpha * a, -2 * np.cos(w), 1 - alpha * a]
    den = [1 + alpha / a, -2 * np.cos(w), 1 - alpha / a]
    return np.array([b + den]) / den[0]


def channel(x, rng):
    # Zero-phase filters (forward-backward) colour the signal without delaying the phones.
    if rng.random() < 0.8:
        lo, hi = rng.uniform(60, 300), rng.uniform(3400, 7600)
        x = signal.sosfiltfilt(signal.butter(2, [lo, hi], "bandpass", fs=SR, output="sos"), x)
    for _ in range(rng.integers(0, 4)):
        # Forward-backward squares the response, so each pass gets half the gain in dB.
        sos = peaking_eq(np.exp(rng.uniform(np.log(200), np.log(6000))), rng.uniform(-5, 5),
                         rng.uniform(0.7, 2.0))
        x = signal.sosfiltfilt(sos, x)
    if rng.random() < 0.5:
        # A synthetic room: the direct path at t=0, then exponentially decaying diffuse noise.
        rt60 = rng.uniform(0.15, 0.6)
        t = np.arange(int(rt60 * SR)) / SR
        tail = rng.standard_normal(len(t)) * np.exp(-6.9 * t / rt60)
        tail[: int(0.004 * SR)] = 0  # first reflections arrive a few ms after the direct sound
        drr = 10 ** (rng.uniform(3, 15) / 10)  # direct-to-reverberant energy ratio
        rir = tail / np.sqrt(np.sum(tail**2) * drr)
        rir[0] = 1.0
        x = signal.fftconvolve(x, rir)[: len(x)]
    return x


def realize(job, wave, rate, phones):
    """Synthesizer output -> (int16 16 kHz wave, [(class, start, end) seconds]) with variety."""
    rng = np.random.default_rng(job["seed"])
    x = wave.astype(np.float64) / 32768 if wave.dtype.kind == "i" else wave.astype(np.float64)
    # Speed: read the signal as if recorded at rate*speed, then resample to 16 kHz; all times
    # scale by rate/src exactly (src is rounded to 50 Hz to keep the polyphase filter small).
    src = int(round(rate * job["speed"] / 50.0) * 50)
    x = resample(x, src, SR)
    scale = rate / src
    lead, trail = int(rng.uniform(0.05, 0.5) * SR), int(rng.uniform(0.05, 0.5) * SR)
    x = np.concatenate([np.zeros(lead), x, np.zeros(trail)])
    # Phones tile the synthesizer's signal from 0; anything past its end is padding (silence).
    speech_end = (len(x) - trail) / SR
    intervals, start = [], 0.0
    for label, end in phones:
        a, b = lead / SR + start * scale, min(lead / SR + end * scale, speech_end)
        if b > a:
            intervals.append((label, a, b))
        start = max(start, end)
    x = channel(x, rng)
    speech = x[lead : len(x) - trail]
    power = np.mean(speech**2) + 1e-12
    snr = rng.uniform(5, 35)
    x = x + colored_noise(len(x), rng.uniform(0, 2), rng) * np.sqrt(power / 10 ** (snr / 10))
    peak = 10 ** (rng.uniform(-30, -1) / 20)
    x = x * peak / (np.max(np.abs(x)) + 1e-12)
    return np.clip(np.round(x * 32767), -32768, 32767).astype(np.int16), intervals


def frame_labels(intervals, T):
    """The class of each frame: the phone under its centre (10 t + 12.5 ms), else [SIL]."""
    centres = 0.0125 + 0.01 * np.arange(T)
    labels = np.full(T, SIL, dtype="<U5")
    for label, start, end in intervals:
        labels[(centres >= start) & (centres < end)] = label
    return labels


def phone_sequence(intervals):
    """HW3P2's transcript body: the phones in the order spoken, with the leading/trailing padding
    as [SIL] and adjacent silences merged; identical adjacent phones stay apart (they were two)."""
    seq = [SIL]
    for label, _, _ in intervals:
        if not (label == SIL and seq[-1] == SIL):
            seq.append(label)
    if seq[-1] != SIL:
        seq.append(SIL)
    return seq


def sequence_from_frames(frame_labels):
    """The sequence read off frame labels: runs of one class collapsed (AA AA B B B -> AA B).
    Exact except that two identical adjacent phones become one."""
    labels = np.asarray(frame_labels)
    keep = np.ones(len(labels), dtype=bool)
    keep[1:] = labels[1:] != labels[:-1]
    return labels[keep].tolist()


def save_sequence(base, utt_id, phones):
    transcript = np.array([SOS] + list(phones) + [EOS], dtype="<U5")
    np.save(Path(base) / SEQUENCE_DIR / f"{utt_id}.npy", transcript)


def derive_sequences(out):
    """Write <partition>/transcript-hw3p2/ from the frame transcripts of an existing corpus."""
    n = 0
    for partition in PARTITIONS:
        base = Path(out) / partition
        if not (base / "transcript").is_dir():
            continue
        shutil.rmtree(base / SEQUENCE_DIR, ignore_errors=True)
        (base / SEQUENCE_DIR).mkdir()
        for f in sorted((base / "transcript").glob("*.npy")):
            save_sequence(base, f.stem, sequence_from_frames(np.load(f)[1:-1]))
            n += 1
    return n


# --------------------------------------------------------------------------------------------
# The plan (made up front, so the output does not depend on how work is spread over processes).


def make_plan(seed, counts, engines, max_words=16, max_sentences=3):
    sentences = load_sentences(max_words)
    # Text, like speakers, is not shared between partitions.
    text_split = {TRAIN: sentences[0::3] + sentences[1::3], DEV: sentences[2::6], TEST: sentences[5::6]}
    rng = np.random.default_rng(seed)
    jobs = []
    for p_index, partition in enumerate(PARTITIONS):
        voices = [v for v in VOICES if v.partition == partition and v.engine in engines]
        if not voices:
            raise RuntimeError(f"no installed voice for {partition}; engines found: {engines}")
        pool = text_split[partition]
        for n in range(counts[partition]):
            v = voices[rng.integers(len(voices))]
            k = rng.integers(1, max_sentences + 1)
            text = " ".join(pool[i] for i in rng.choice(len(pool), k, replace=False))
            jobs.append(dict(
                id=f"{v.speaker}-{100 + seed % 900}{p_index}-{n:04d}",
                partition=partition, engine=v.engine, voice=v.name, text=text,
                stretch=float(rng.uniform(0.85, 1.25)),  # duration factor (rate)
                speed=float(rng.uniform(0.92, 1.08)),  # resampling factor (tempo and pitch)
                engine_f0=None if v.f0 is None else float(rng.uniform(*v.f0)),
                seed=[seed, p_index, n],
            ))
    return jobs


def batches(jobs, size):
    """Jobs grouped by voice, in chunks (festival pays its startup once per chunk)."""
    by_voice = {}
    for j in jobs:
        by_voice.setdefault((j["engine"], j["voice"]), []).append(j)
    out = []
    for group in by_voice.values():
        out += [group[i : i + size] for i in range(0, len(group), size)]
    return out


def run_batch(args):
    jobs, out = args
    done = []
    with tempfile.TemporaryDirectory() as tmp:
        if jobs[0]["engine"] == "festival":
            synthesized = synth_festival(jobs, tmp)
        elif jobs[0]["engine"] == "flite":
            synthesized = ((j, *synth_flite(j, tmp)) for j in jobs)
        else:
            synthesized = ((j, *synth_espeak(j)) for j in jobs)
        for j, wave, rate, phones in synthesized:
            x, intervals = realize(j, wave, rate, phones)
            feats = logmel(x, SR)
            labels = frame_labels(intervals, len(feats))
            transcript = np.concatenate([[SOS], labels, [EOS]]).astype("<U5")
            base = Path(out) / j["partition"]
            np.save(base / "mfcc" / f"{j['id']}.npy", feats)
            np.save(base / "transcript" / f"{j['id']}.npy", transcript)
            save_sequence(base, j["id"], phone_sequence(intervals))
            done.append((j["id"], j["partition"], len(x) / SR, len(feats),
                         sorted(set(labels.tolist()))))
    return done


def validate(out):
    """Every mfcc has a transcript of T+2 known classes framed by [SOS]/[EOS], and a sequence."""
    for partition in PARTITIONS:
        mfcc = sorted((Path(out) / partition / "mfcc").glob("*.npy"))
        for f in mfcc:
            x = np.load(f)
            y = np.load(Path(out) / partition / "transcript" / f.name)
            assert x.dtype == np.float32 and x.ndim == 2 and x.shape[1] == 28, f
            assert np.isfinite(x).all(), f
            assert y.shape == (len(x) + 2,) and y[0] == SOS and y[-1] == EOS, f
            assert set(y[1:-1]) <= set(CLASSES), f
            seq = np.load(Path(out) / partition / SEQUENCE_DIR / f.name)
            assert seq[0] == SOS and seq[-1] == EOS and set(seq[1:-1]) <= set(CLASSES), f


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default="data/demo", help="output folder (replaced if it exists)")
    ap.add_argument("--seed", type=int, default=0, help="seed of every random choice")
    ap.add_argument("--train", type=int, default=300, help="training utterances")
    ap.add_argument("--dev", type=int, default=40, help="dev utterances")
    ap.add_argument("--test", type=int, default=40, help="test utterances")
    ap.add_argument("--hours", type=float, default=None,
                    help="instead of counts: about this many hours of training audio "
                         "(dev and test get 5%% each)")
    ap.add_argument("--max-words", type=int, default=16, help="longest sentence, in words")
    ap.add_argument("--sentences", type=int, default=3, help="most sentences per utterance")
    ap.add_argument("--engines", default="festival,flite,espeak",
                    help="comma-separated subset of festival,flite,espeak")
    ap.add_argument("--jobs", type=int, default=os.cpu_count(), help="worker processes")
    ap.add_argument("--batch", type=int, default=16, help="utterances per worker task")
    ap.add_argument("--derive-sequences", action="store_true",
                    help="only write <partition>/transcript-hw3p2/ of the corpus in --out from its "
                         "frame transcripts (runs collapsed), synthesizing nothing")
    args = ap.parse_args(argv)
    if args.derive_sequences:
        print(f"{derive_sequences(args.out)} sequence transcripts written", file=sys.stderr)
        return

    engines = [e for e in args.engines.split(",") if e]
    missing = sorted(set(engines) - set(available_engines()))
    if missing:
        sys.exit(f"not installed: {', '.join(missing)}. apt-get install festival festlex-cmu "
                 "festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts flite espeak-ng "
                 "libespeak-ng-dev fortunes wamerican, or pass --engines without them")
    counts = {TRAIN: args.train, DEV: args.dev, TEST: args.test}
    if args.hours is not None:
        # About 0.37 s of speech per word (rates and pauses included) plus 0.55 s of padding.
        words = np.mean([len(s.split()) for s in load_sentences(args.max_words)])
        per_utt = 0.55 + 0.37 * words * (1 + args.sentences) / 2
        n = max(1, round(args.hours * 3600 / per_utt))
        counts = {TRAIN: n, DEV: max(1, n // 20), TEST: max(1, n // 20)}
    out = Path(args.out)
    jobs = make_plan(args.seed, counts, engines, args.max_words, args.sentences)

    for partition in PARTITIONS:
        shutil.rmtree(out / partition, ignore_errors=True)
        for kind in ("mfcc", "transcript", SEQUENCE_DIR):
            (out / partition / kind).mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    work = [(b, str(out)) for b in batches(jobs, args.batch)]
    done = []
    with multiprocessing.get_context("fork").Pool(args.jobs) as pool:
        for result in pool.imap_unordered(run_batch, work):
            done += result
            print(f"\r{len(done)}/{len(jobs)} utterances", end="", file=sys.stderr, flush=True)
    elapsed = time.time() - t0
    print(file=sys.stderr)
    validate(out)
    seconds = sum(d[2] for d in done)
    frames = {p: sum(d[3] for d in done if d[1] == p) for p in PARTITIONS}
    # corpus.json describes the corpus (deterministic); the timing goes to the screen only.
    summary = dict(seed=args.seed, counts=counts, max_words=args.max_words,
                   sentences=args.sentences, engines=engines, frames=frames,
                   audio_seconds=round(seconds, 1),
                   voices={p: sorted({f"{j['engine']}:{j['voice']}" for j in jobs if j["partition"] == p})
                           for p in PARTITIONS})
    (out / "corpus.json").write_text(json.dumps(summary, indent=1) + "\n")
    print(json.dumps(summary, indent=1))
    print(f"{seconds:.0f} s of audio in {elapsed:.0f} s with {args.jobs} processes: "
          f"{seconds / elapsed:.1f} s of audio per second", file=sys.stderr)


if __name__ == "__main__":
    main()
