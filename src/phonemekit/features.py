"""Speech -> log-mel frames, by the recipe of the HW1P2 features (28 log-mel energies per 10 ms).

    x = logmel(wave, sample_rate=16000)      # float32 (T, 28)
    x = logmel_file("my_recording.wav")      # the same, from a WAV file

Recipe: pre-emphasis 0.97, 25 ms Hamming windows (400 samples) every 10 ms (160), 512-point
FFT power spectrum, HTK-mel triangular filters spanning 0-8 kHz, natural log with a floor.
T = 1 + (N - 400) // 160 frames; frame t covers samples [160 t, 160 t + 400), so its centre
lies at 10 t + 12.5 ms. The demo corpus in data/demo/ holds exactly this function's output.

Plain numpy: the whole recipe is a few array operations, it runs anywhere the kit runs
(Colab included) with nothing to install, and a reader can check every step. scipy, which
Colab preinstalls, is imported only to resample audio that is not at 16 kHz and to read
WAV files.
"""

from pathlib import Path

import numpy as np

SAMPLE_RATE = 16000
WIN_LENGTH = 400  # 25 ms at 16 kHz
HOP_LENGTH = 160  # 10 ms
N_FFT = 512
PREEMPHASIS = 0.97
LOG_FLOOR = 1e-10  # log(0) is -inf; digital silence gets log(1e-10) = -23.0 instead


def hz_to_mel(f):
    """HTK mel scale."""
    return 2595.0 * np.log10(1.0 + np.asarray(f, dtype=np.float64) / 700.0)


def mel_to_hz(m):
    return 700.0 * (10.0 ** (np.asarray(m, dtype=np.float64) / 2595.0) - 1.0)


def mel_filterbank(n_mels=28, n_fft=N_FFT, sample_rate=SAMPLE_RATE, f_min=0.0, f_max=None):
    """(n_mels, n_fft // 2 + 1) triangular filters, equally spaced on the HTK mel scale.

    Filter m rises from edge m to a peak of 1 at edge m+1 and falls to 0 at edge m+2
    (unnormalised, as HTK and librosa's htk=True, norm=None)."""
    f_max = sample_rate / 2 if f_max is None else f_max
    edges = mel_to_hz(np.linspace(hz_to_mel(f_min), hz_to_mel(f_max), n_mels + 2))
    bins = np.arange(n_fft // 2 + 1) * sample_rate / n_fft  # centre frequency of each FFT bin
    lower, centre, upper = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising = (bins - lower) / (centre - lower)
    falling = (upper - bins) / (upper - centre)
    return np.maximum(0.0, np.minimum(rising, falling))


def num_frames(n_samples):
    """Frames that logmel makes from n_samples samples at 16 kHz."""
    return 1 + (n_samples - WIN_LENGTH) // HOP_LENGTH


def resample(wave, orig_rate, new_rate=SAMPLE_RATE):
    """Resample a 1-D signal with a polyphase filter (scipy.signal.resample_poly)."""
    if orig_rate == new_rate:
        return wave
    from math import gcd

    from scipy.signal import resample_poly  # only needed for audio that is not at 16 kHz

    g = gcd(int(orig_rate), int(new_rate))
    return resample_poly(wave, int(new_rate) // g, int(orig_rate) // g)


def _as_float(wave):
    """Integer PCM -> floats in [-1, 1); float input is taken as already in [-1, 1]."""
    wave = np.asarray(wave)
    if wave.dtype.kind == "u":  # 8-bit WAV is unsigned, centred on 128
        half = 2.0 ** (8 * wave.dtype.itemsize - 1)
        return (wave.astype(np.float64) - half) / half
    if wave.dtype.kind == "i":
        return wave.astype(np.float64) / 2.0 ** (8 * wave.dtype.itemsize - 1)
    if wave.dtype.kind == "f":
        return wave.astype(np.float64)
    raise TypeError(f"logmel: expected a numeric waveform, got dtype {wave.dtype}")


def logmel(wave, sample_rate=SAMPLE_RATE, n_mels=28):
    """Log-mel energies of a mono waveform: float32 (T, n_mels), T = 1 + (N - 400) // 160.

    wave: 1-D array of samples (int16/int32 PCM, or floats in [-1, 1]) at sample_rate Hz;
    other rates are resampled to 16 kHz first, so N counts 16 kHz samples."""
    wave = _as_float(wave)
    if wave.ndim != 1:
        raise ValueError(
            f"logmel: expected a 1-D mono waveform, got shape {wave.shape}; "
            "average the channels first (wave.mean(axis=1)) or use logmel_file"
        )
    wave = resample(wave, sample_rate)
    if len(wave) < WIN_LENGTH:
        raise ValueError(
            f"logmel: {len(wave)} samples at 16 kHz is shorter than one 25 ms window "
            f"({WIN_LENGTH} samples); give at least {WIN_LENGTH / SAMPLE_RATE:.3f} s of audio"
        )
    # Pre-emphasis boosts high frequencies, whose energy speech spectra otherwise lose.
    emphasized = np.append(wave[:1], wave[1:] - PREEMPHASIS * wave[:-1])
    T = num_frames(len(emphasized))
    # (T, 400) view of overlapping frames without copying the signal 2.5 times.
    frames = np.lib.stride_tricks.sliding_window_view(emphasized, WIN_LENGTH)[::HOP_LENGTH][:T]
    spectrum = np.fft.rfft(frames * np.hamming(WIN_LENGTH), n=N_FFT)  # zero-padded to 512
    power = spectrum.real**2 + spectrum.imag**2
    mel = power @ mel_filterbank(n_mels).T
    return np.log(np.maximum(mel, LOG_FLOOR)).astype(np.float32)


def read_wav(path):
    """(samples, sample_rate) of a WAV file, channels averaged to mono, as floats in [-1, 1]."""
    from scipy.io import wavfile  # reads PCM 8/16/24/32-bit and float WAV

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"logmel_file: no file at {path}")
    try:
        rate, data = wavfile.read(path)
    except ValueError as e:
        raise ValueError(
            f"logmel_file: cannot read {path} as WAV ({e}); convert it first, e.g. "
            f"`ffmpeg -i {path.name} -ac 1 -ar 16000 {path.stem}.wav`"
        ) from None
    data = _as_float(data)
    if data.ndim == 2:
        data = data.mean(axis=1)
    return data, rate


def logmel_file(path, n_mels=28):
    """Log-mel frames (T, n_mels) of a WAV recording, ready for a model trained on HW1P2 data.

    Stereo is averaged to mono and any sample rate is resampled to 16 kHz. Other formats
    (mp3, m4a, flac) are converted first with ffmpeg: ffmpeg -i in.m4a -ac 1 -ar 16000 out.wav"""
    wave, rate = read_wav(path)
    try:
        return logmel(wave, rate, n_mels)
    except ValueError as e:
        raise ValueError(f"{path}: {e}") from None
