"""logmel: the course's feature recipe, checked against a direct numpy reference."""

import numpy as np
import pytest
from scipy.io import wavfile

from phonemekit.features import hz_to_mel, logmel, logmel_file, mel_filterbank, mel_to_hz, num_frames

SR = 16000


def reference_logmel(x, n_mels=28):
    """The recipe written out frame by frame, with nothing shared with the implementation
    but the mel filter bank (checked separately below)."""
    x = np.asarray(x, dtype=np.float64)
    y = np.empty_like(x)
    y[0] = x[0]
    for n in range(1, len(x)):
        y[n] = x[n] - 0.97 * x[n - 1]
    T = (len(y) - 400) // 160 + 1
    n = np.arange(400)
    hamming = 0.54 - 0.46 * np.cos(2 * np.pi * n / 399)
    out = np.empty((T, n_mels))
    for t in range(T):
        frame = np.zeros(512)
        frame[:400] = y[160 * t : 160 * t + 400] * hamming
        power = np.abs(np.fft.fft(frame)[:257]) ** 2
        out[t] = np.log(np.maximum(mel_filterbank(n_mels) @ power, 1e-10))
    return out


def test_logmel_matches_a_frame_by_frame_reference():
    rng = np.random.default_rng(0)
    x = rng.standard_normal(4000) * 0.1 + np.sin(2 * np.pi * 440 * np.arange(4000) / SR) * 0.3
    got = logmel(x)
    assert got.dtype == np.float32 and got.shape == (23, 28)
    np.testing.assert_allclose(got, reference_logmel(x), rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("n_samples", [400, 401, 559, 560, 16000, 16123])
def test_frame_count_is_one_plus_samples_minus_400_over_160(n_samples):
    x = np.random.default_rng(1).standard_normal(n_samples)
    assert len(logmel(x)) == 1 + (n_samples - 400) // 160 == num_frames(n_samples)


@pytest.mark.parametrize("freq", [300.0, 1000.0, 3000.0, 6500.0])
def test_a_sine_lands_in_the_mel_band_whose_centre_is_nearest(freq):
    x = np.sin(2 * np.pi * freq * np.arange(SR) / SR)
    band = logmel(x).mean(axis=0).argmax()
    centres = mel_to_hz(np.linspace(0, hz_to_mel(8000), 30))[1:-1]
    assert band == np.abs(centres - freq).argmin()


def test_filters_are_htk_mel_triangles_that_cover_0_to_8_khz():
    fb = mel_filterbank(28)
    assert fb.shape == (28, 257)
    assert (fb.max(axis=1) > 0.5).all(), "every band sees at least one FFT bin"
    assert np.allclose(fb[:, 0], 0) and np.allclose(fb[:, -1], 0)  # 0 Hz, 8 kHz: outer edges
    assert np.isclose(hz_to_mel(1000), 1000, atol=0.5)  # HTK's scale puts 1 kHz at ~1000 mel
    np.testing.assert_allclose(mel_to_hz(hz_to_mel([0, 440, 8000])), [0, 440, 8000])


def test_frame_t_is_centred_at_10t_plus_12_5_ms():
    # A click at 512.5 ms falls in frames whose window covers it; the frame centred on it
    # (t = 50: 10 * 50 + 12.5 ms) sees it with the full Hamming weight.
    x = np.zeros(SR)
    x[int(0.5125 * SR)] = 1.0
    energy = logmel(x).max(axis=1)
    assert energy.argmax() == 50


def test_integer_pcm_and_float_input_agree():
    x = (np.random.default_rng(2).standard_normal(8000) * 3000).astype(np.int16)
    np.testing.assert_allclose(logmel(x), logmel(x / 32768.0), atol=1e-5)


def test_other_sample_rates_are_resampled_to_16k():
    sr = 44100
    x = np.sin(2 * np.pi * 1000 * np.arange(sr) / sr)
    y = np.sin(2 * np.pi * 1000 * np.arange(SR) / SR)
    a, b = logmel(x, sample_rate=sr), logmel(y)
    assert a.shape == b.shape
    assert a.mean(axis=0).argmax() == b.mean(axis=0).argmax()


def test_silence_is_floored_not_minus_infinity():
    out = logmel(np.zeros(1600))
    assert np.isfinite(out).all() and np.allclose(out, np.log(1e-10))


def test_too_short_or_stereo_input_is_refused_with_the_fix():
    with pytest.raises(ValueError, match="shorter than one 25 ms window"):
        logmel(np.zeros(399))
    with pytest.raises(ValueError, match="mono"):
        logmel(np.zeros((1600, 2)))


def test_logmel_file_reads_a_stereo_wav_at_any_rate(tmp_path):
    sr = 22050
    t = np.arange(sr) / sr
    tone = np.sin(2 * np.pi * 1000 * t)
    stereo = (np.stack([tone, tone], axis=1) * 10000).astype(np.int16)
    path = tmp_path / "me.wav"
    wavfile.write(path, sr, stereo)
    x = logmel_file(path)
    assert x.shape == (num_frames(SR), 28) and x.dtype == np.float32
    np.testing.assert_allclose(x, logmel(stereo[:, 0], sr), atol=1e-4)


def test_logmel_file_names_the_file_it_cannot_use(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing.wav"):
        logmel_file(tmp_path / "nothing.wav")
    bad = tmp_path / "notes.wav"
    bad.write_text("not audio")
    with pytest.raises(ValueError, match="notes.wav.*ffmpeg"):
        logmel_file(bad)
    short = tmp_path / "click.wav"
    wavfile.write(short, SR, np.zeros(100, np.int16))
    with pytest.raises(ValueError, match="click.wav"):
        logmel_file(short)
