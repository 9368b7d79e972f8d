"""Mel spectrogram front ends built from `torch.stft` and librosa's mel filterbanks.

torchaudio has no release for torch 2.13, and each pretrained model was trained on one exact
front end (window, centring, mel scale, power), so each model states its front end here in
full and the tests compare it with the reference code (librosa, torchlibrosa, vggish_input).
An FFT-based STFT is also several times cheaper than torchlibrosa's STFT-as-convolution.
"""

from __future__ import annotations

import librosa
import numpy as np
import torch
from torch import nn

MEL_SCALES = ("slaney", "htk")


class MelSpectrogram(nn.Module):
    """Linear-amplitude mel spectrogram (batch, samples) -> (batch, frames, n_mels).

    Periodic Hann window of `win_length` zero-padded to `n_fft` as librosa does; with
    `center` the signal is reflect-padded by n_fft // 2 on both sides, so a clip of N samples
    has 1 + N // hop_length frames. `power` 2 gives the power spectrum, 1 the magnitude.
    The filterbank is librosa's (`htk=False` is the Slaney scale; `norm="slaney"` the Slaney
    area normalisation; None leaves triangles of height 1).
    """

    def __init__(self, *, sample_rate: int, n_fft: int, win_length: int, hop_length: int,
                 n_mels: int, fmin: float, fmax: float, mel_scale: str = "slaney",
                 norm: str | None = "slaney", center: bool = True, power: float = 2.0) -> None:
        super().__init__()
        if mel_scale not in MEL_SCALES:
            raise ValueError(f"mel_scale={mel_scale!r}: allowed values are {', '.join(MEL_SCALES)}")
        self.n_fft = n_fft
        self.win_length = win_length
        self.hop_length = hop_length
        self.center = center
        self.power = power
        self.register_buffer("window", torch.hann_window(win_length, periodic=True),
                             persistent=False)
        filterbank = librosa.filters.mel(sr=sample_rate, n_fft=n_fft, n_mels=n_mels, fmin=fmin,
                                         fmax=fmax, htk=mel_scale == "htk", norm=norm)
        self.register_buffer("mel_basis", torch.from_numpy(filterbank.T.astype(np.float32)),
                             persistent=False)

    def forward(self, waveforms: torch.Tensor) -> torch.Tensor:
        with torch.autocast(waveforms.device.type, enabled=False):   # float32 under bf16
            return self.mel_spectrogram(waveforms.float())

    def mel_spectrogram(self, waveforms: torch.Tensor) -> torch.Tensor:
        spectrum = torch.stft(waveforms, n_fft=self.n_fft, hop_length=self.hop_length,
                              win_length=self.win_length, window=self.window,
                              center=self.center, pad_mode="reflect", return_complex=True)
        magnitude = spectrum.abs()
        if self.power != 1.0:
            magnitude = magnitude.pow(self.power)
        return magnitude.transpose(1, 2) @ self.mel_basis

