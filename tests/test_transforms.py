import librosa
import numpy as np
import pytest
import tensorflow as tf

from advsep_tf import transforms
from conftest import walked_segments


def _signal(n, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(n) / 8192
    return (0.5 * np.sin(2 * np.pi * 440 * t) + 0.1 * rng.standard_normal(n)).astype(np.float32)


@pytest.mark.parametrize("n_fft, n_hop", [(512, 256), (256, 64), (64, 32)])
def test_stft_matches_librosa(n_fft, n_hop):
    x = _signal(5000)
    ours = transforms.stft(x[None], n_fft, n_hop).numpy()[0]
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
    y = transforms.istft(transforms.stft(x[None], n_fft, n_hop), n_fft, n_hop, length).numpy()[0]
    assert y.shape == x.shape
    assert np.linalg.norm(y - x) / np.linalg.norm(x) < 1e-4


def test_log_magnitude_keeps_the_low_bins_as_log1p():
    spectrum = transforms.stft(_signal(4096)[None], 512, 256)
    log_spec = transforms.log_magnitude(spectrum, 256).numpy()
    assert log_spec.shape == (1, 256, spectrum.shape[1])
    np.testing.assert_allclose(
        np.expm1(log_spec[0]).T, np.abs(spectrum.numpy()[0, :, :256]), rtol=1e-4, atol=1e-4
    )


@pytest.mark.parametrize("patch_hop", [8, 16])
@pytest.mark.parametrize("total", [5, 16, 37, 64])
def test_patching_and_overlap_add_are_inverse(patch_hop, total):
    rng = np.random.default_rng(total)
    log_spec = rng.random((2, 32, total)).astype(np.float32)
    patches = transforms.to_patches(log_spec, 16, patch_hop)
    assert patches.shape[1:] == (32, 16, 1)
    assert patches.shape[0] % 2 == 0
    back = transforms.from_patches(
        tf.concat([patches, 2 * patches], axis=-1), 2, total, patch_hop
    ).numpy()
    assert back.shape == (2, 2, 32, total)
    np.testing.assert_allclose(back[:, 0], log_spec, atol=1e-5)
    np.testing.assert_allclose(back[:, 1], 2 * log_spec, atol=1e-5)


def test_reconstruct_with_the_true_magnitudes_gives_the_signal_back():
    x = _signal(9000)
    n_fft, n_hop = 512, 256
    stft = transforms.STFT(n_fft, n_hop)
    real, imag = stft.forward(x[None])
    log_all_bins = stft.log_magnitude(real, imag, n_fft // 2 + 1)[:, None]
    y = stft.reconstruct(log_all_bins, real, imag, len(x)).numpy()
    assert y.shape == (1, 1, len(x))
    assert np.linalg.norm(y[0, 0] - x) / np.linalg.norm(x) < 1e-4
    # Dropping the Nyquist bin (the paper's 256 of 257) costs almost nothing on this signal.
    y256 = stft.reconstruct(log_all_bins[:, :, :256], real, imag, len(x)).numpy()
    assert np.linalg.norm(y256[0, 0] - x) / np.linalg.norm(x) < 1e-2


@pytest.mark.parametrize("n_fft, n_hop", [(512, 256), (256, 64), (64, 32)])
def test_frame_count_is_the_stfts(n_fft, n_hop):
    for length in (1, n_fft - 1, n_fft, 5000, 12345):
        frames = transforms.stft(_signal(length)[None], n_fft, n_hop).shape[1]
        assert transforms.nb_stft_frames(length, n_fft, n_hop) == frames
        assert int(transforms.nb_stft_frames(tf.constant(length), n_fft, n_hop)) == frames


@pytest.mark.parametrize(
    "layout",
    [
        transforms.model_segment_layout(512, 256, 64, 30 * 8192),
        transforms.model_segment_layout(64, 32, 16, transforms.minimum_model_segment(64, 32, 16)),
        transforms.frame_segment_layout(4096, 2048, 441000),
    ],
)
def test_walked_segments_tile_any_song(layout):
    """The segment walker's segments, whatever the block sizes, tile the song with parts that
    saw all their context."""
    for length in (1, layout.size - 1, layout.size, layout.size + 1, 7 * layout.size + 123):
        plan = walked_segments(length, layout)
        for block in (1000, layout.step + 1):
            assert walked_segments(length, layout, block) == plan
        assert plan[0][1] == 0 and plan[-1][2] == length
        assert all(a[2] == b[1] for a, b in zip(plan, plan[1:]))
        assert all(start % layout.quantum == 0 for start, _, _ in plan)
        # Every kept sample is in the exact part of its segment (or at the song's own edges).
        for i, (start, keep_from, keep_to) in enumerate(plan):
            assert keep_to - start <= layout.size
            assert i == 0 or keep_from - start >= layout.left_margin
            last = i == len(plan) - 1
            assert last or start + layout.size - keep_to >= layout.right_margin


def test_model_segments_need_a_whole_number_of_half_patches():
    with pytest.raises(ValueError, match="multiple of 256"):
        transforms.model_segment_layout(64, 32, 16, 1000)
    layout = transforms.model_segment_layout(
        64, 32, 16, transforms.minimum_model_segment(64, 32, 16)
    )
    assert layout.step >= layout.quantum


@pytest.mark.parametrize("backend", transforms.STFT_BACKENDS)
@pytest.mark.parametrize("n_fft, n_hop", [(256, 128), (64, 32)])
def test_each_stft_backend_reconstructs_the_signal(backend, n_fft, n_hop):
    x = _signal(7000, seed=n_fft)[None]
    stft = transforms.STFT(n_fft, n_hop, backend)
    real, imag = stft.forward(x)
    y = stft.inverse(real, imag, x.shape[1]).numpy()
    assert np.linalg.norm(y - x) / np.linalg.norm(x) < 1e-5
    other = transforms.STFT(n_fft, n_hop, "tf_signal" if backend == "dft_matmul" else "dft_matmul")
    real_other, imag_other = other.forward(x)
    np.testing.assert_allclose(real.numpy(), real_other.numpy(), atol=1e-4)
    np.testing.assert_allclose(imag.numpy(), imag_other.numpy(), atol=1e-4)
    with pytest.raises(ValueError, match="backend"):
        transforms.STFT(n_fft, n_hop, "fftw")
