"""Masks above the model's band: "tilt" follows each stem's spectral slope bin by bin."""

import numpy as np
import pytest
import tensorflow as tf

from advsep_tf import filtering


def _power_law(slope: float, top: int, frames: int = 3) -> np.ndarray:
    """(1, frames, top) magnitudes falling as f**slope from bin 1 up (bin 0 set like bin 1)."""
    bins = np.maximum(np.arange(top), 1).astype(np.float64)
    return np.tile(bins**slope, (1, frames, 1)).astype(np.float32)


def test_tilt_extension_continues_a_power_law_exactly():
    top, freqs = 64, 160
    magnitudes = tf.constant(_power_law(-2.0, top))
    extended = filtering.tilt_extension(magnitudes, freqs).numpy()
    expected = np.arange(top, freqs, dtype=np.float64) ** -2.0
    np.testing.assert_allclose(extended[0, 0], expected, rtol=1e-3)


def test_tilt_extension_never_rises():
    top, freqs = 64, 160
    extended = filtering.tilt_extension(tf.constant(_power_law(1.5, top)), freqs).numpy()
    np.testing.assert_allclose(extended[0, 0], extended[0, 0, 0], rtol=1e-4)
    geometric_mean = np.exp(np.mean(np.log(np.arange(32, 64) ** 1.5)))
    assert extended[0, 0, 0] == pytest.approx(geometric_mean, rel=1e-3)


@pytest.mark.parametrize("extension", filtering.BAND_EXTENSIONS)
def test_masks_above_the_band_follow_the_extension(extension):
    """A falling 'voice' and a flat 'cymbal' with equal energy in the top octave: with "tilt" the
    voice's share of each bin above the band falls bin by bin; with "mean" every bin above keeps
    the top octave's mean share. Either way the shares of a bin add up to one."""
    top, freqs = 64, 160
    voice, flat = _power_law(-3.0, top), np.ones((1, 3, top), np.float32)
    voice *= np.sum(flat[..., top // 2 :]) / np.sum(voice[..., top // 2 :])
    stems = tf.constant(np.stack([voice, flat], axis=1))  # (1, 2, frames, top)
    masks = filtering.band_limited_masks(stems, freqs, band_extension=extension).numpy()
    assert masks.shape[-1] == freqs
    voice_share = masks[0, 0, 0, top:]
    np.testing.assert_allclose(masks.sum(axis=1), 1.0, atol=1e-6)
    if extension == "tilt":
        assert np.all(np.diff(voice_share) < 0)
        assert voice_share[-1] < 0.1
    else:
        np.testing.assert_allclose(voice_share, voice_share[0])


def test_band_extension_choice_changes_only_the_band_above():
    """mask_mixture with either extension: the same stems below the band, different above."""
    rate, n = 16000, 16000
    rng = np.random.default_rng(0)
    mixture = rng.standard_normal((1, n)).astype(np.float32)
    stems = np.stack([0.3 * mixture, 0.7 * mixture], axis=1) + 0.05 * rng.standard_normal(
        (1, 2, n)
    ).astype(np.float32)
    stft = filtering.transforms.STFT(512, 128)
    out = {
        e: filtering.mask_mixture(
            tf.constant(mixture), tf.constant(stems), stft, band_top=128, band_extension=e
        ).numpy()
        for e in filtering.BAND_EXTENSIONS
    }
    for result in out.values():
        np.testing.assert_allclose(result.sum(axis=1), mixture, atol=1e-4)

    def band(x, low, high):
        spectrum = np.abs(np.fft.rfft(x[0, 0]))
        freqs = np.fft.rfftfreq(n, 1 / rate)
        return spectrum[(freqs > low) & (freqs < high)]

    below = [band(out[e], 200, 3500) for e in filtering.BAND_EXTENSIONS]
    np.testing.assert_allclose(below[0], below[1], rtol=0.02, atol=1e-2)
    above = [band(out[e], 4500, 7800) for e in filtering.BAND_EXTENSIONS]
    assert np.abs(above[0] - above[1]).mean() > 0.01 * above[1].mean()


def test_silence_gate_hands_a_quiet_stems_share_to_the_others():
    """Stem 0 holds 1% of the mixture's energy (-20 dB) in frames 0-19 and a quarter of it in
    frames 20-39. Gated at -14 dB (knee 6 dB, 5-frame window), it is silenced in the first frames
    and its share goes to the others in proportion to their masks; the last frames, where every
    stem is above the threshold, are left alone; the masks always sum to 1."""
    frames, freqs = 40, 8
    first = np.arange(frames) < 20
    masks = np.zeros((2, 3, frames, freqs), np.float32)  # (channels, stems, frames, freqs)
    for k, (quiet, loud) in enumerate([(0.1, 0.5), (0.6, 0.25), (0.3, 0.25)]):
        masks[:, k] = np.where(first, quiet, loud)[:, None]
    power = np.ones((2, 1, frames, freqs), np.float32)
    gated = filtering.gate_masks(tf.constant(masks), tf.constant(power), -14.0, 5).numpy()
    np.testing.assert_allclose(gated.sum(axis=1), 1.0, atol=1e-6)
    np.testing.assert_allclose(gated[:, 0, :18], 0.0, atol=1e-7)  # the window ends in frame 19
    np.testing.assert_allclose(gated[:, 1, :18], 0.6 / 0.9, atol=1e-6)
    np.testing.assert_allclose(gated[:, 2, :18], 0.3 / 0.9, atol=1e-6)
    np.testing.assert_allclose(gated[:, :, 22:], masks[:, :, 22:], atol=1e-6)
    # 3 dB under the threshold, half way down the knee: gain 0.5, then normalised.
    knee = filtering.gate_masks(tf.constant(masks), tf.constant(power), -17.0, 5).numpy()
    np.testing.assert_allclose(knee[:, 0, :18], 0.05 / 0.95, atol=1e-5)
    # A threshold below every share changes nothing.
    low = filtering.gate_masks(tf.constant(masks), tf.constant(power), -40.0, 5).numpy()
    np.testing.assert_allclose(low, masks, atol=1e-6)
