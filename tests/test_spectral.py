import librosa
import numpy as np
import pytest
import tensorflow as tf

from advsep_tf import spectral


def _signal(n, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(n) / 8192
    return (0.5 * np.sin(2 * np.pi * 440 * t) + 0.1 * rng.standard_normal(n)).astype(np.float32)


@pytest.mark.parametrize("n_fft, n_hop", [(512, 256), (256, 64), (64, 32)])
def test_stft_matches_librosa(n_fft, n_hop):
    x = _signal(5000)
    ours = spectral.stft(x[None], n_fft, n_hop).numpy()[0]
    pad = n_fft - n_hop
    end = ours.shape[0] * n_hop + n_fft  # enough zeros for librosa to frame the same span
    padded = np.pad(x, (pad, end))
    reference = librosa.stft(padded, n_fft=n_fft, hop_length=n_hop, window="hann", center=False).T
    reference = reference[: ours.shape[0]]
    np.testing.assert_allclose(np.abs(ours), np.abs(reference), rtol=1e-3, atol=1e-3)


@pytest.mark.parametrize("n_fft, n_hop", [(512, 256), (256, 64), (64, 32)])
@pytest.mark.parametrize("length", [1000, 8192, 12345])
def test_stft_round_trip_reconstructs_perfectly(n_fft, n_hop, length):
    x = _signal(length, seed=length)
    y = spectral.istft(spectral.stft(x[None], n_fft, n_hop), n_fft, n_hop, length).numpy()[0]
    assert y.shape == x.shape
    assert np.linalg.norm(y - x) / np.linalg.norm(x) < 1e-4


def test_log_magnitude_keeps_the_low_bins_as_log1p():
    spectrum = spectral.stft(_signal(4096)[None], 512, 256)
    log_spec = spectral.log_magnitude(spectrum, 256).numpy()
    assert log_spec.shape == (1, 256, spectrum.shape[1])
    np.testing.assert_allclose(np.expm1(log_spec[0]).T, np.abs(spectrum.numpy()[0, :, :256]), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("patch_hop", [8, 16])
@pytest.mark.parametrize("total", [5, 16, 37, 64])
def test_patching_and_overlap_add_are_inverse(patch_hop, total):
    rng = np.random.default_rng(total)
    log_spec = rng.random((2, 32, total)).astype(np.float32)
    patches = spectral.to_patches(log_spec, 16, patch_hop)
    assert patches.shape[1:] == (32, 16, 1)
    assert patches.shape[0] % 2 == 0
    back = spectral.from_patches(tf.concat([patches, 2 * patches], axis=-1), 2, total, patch_hop).numpy()
    assert back.shape == (2, 2, 32, total)
    np.testing.assert_allclose(back[:, 0], log_spec, atol=1e-5)
    np.testing.assert_allclose(back[:, 1], 2 * log_spec, atol=1e-5)


def test_reconstruct_with_the_true_magnitudes_gives_the_signal_back():
    x = _signal(9000)
    n_fft, n_hop = 512, 256
    spectrum = spectral.stft(x[None], n_fft, n_hop)
    log_all_bins = spectral.log_magnitude(spectrum, n_fft // 2 + 1)[:, None]
    y = spectral.reconstruct(log_all_bins, spectrum, n_fft, n_hop, len(x)).numpy()
    assert y.shape == (1, 1, len(x))
    assert np.linalg.norm(y[0, 0] - x) / np.linalg.norm(x) < 1e-4
    # Dropping the Nyquist bin (the paper's 256 of 257) costs almost nothing on this signal.
    y256 = spectral.reconstruct(log_all_bins[:, :, :256], spectrum, n_fft, n_hop, len(x)).numpy()
    assert np.linalg.norm(y256[0, 0] - x) / np.linalg.norm(x) < 1e-2
