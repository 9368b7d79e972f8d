"""`MelSpectrogram` and `AmplitudeToDB` as torchaudio 2.x documents and computes them.

Only the arguments MuQ passes are supported (torchaudio's defaults elsewhere): a periodic
Hann window of `n_fft`, centred STFT with reflect padding, power 2, torchaudio's own
`melscale_fbanks` (HTK scale, no area normalisation, 0 Hz to sample_rate // 2, computed in
float32 with torch as torchaudio does, not librosa's filterbank), and `10 * log10(max(x,
1e-10))` with reference 1 and no `top_db`. tests/test_extractor_muq.py checks both against
librosa.
"""

from __future__ import annotations

import math

import torch
from torch import nn


def _hz_to_mel_htk(frequency_hz: float) -> float:
    return 2595.0 * math.log10(1.0 + frequency_hz / 700.0)


def _mel_to_hz_htk(mels: torch.Tensor) -> torch.Tensor:
    return 700.0 * (10.0 ** (mels / 2595.0) - 1.0)


def melscale_fbanks(n_freqs: int, f_min: float, f_max: float, n_mels: int,
                    sample_rate: int) -> torch.Tensor:
    """torchaudio.functional.melscale_fbanks with mel_scale="htk", norm=None: (n_freqs, n_mels)."""
    all_freqs = torch.linspace(0, sample_rate // 2, n_freqs)
    m_pts = torch.linspace(_hz_to_mel_htk(f_min), _hz_to_mel_htk(f_max), n_mels + 2)
    f_pts = _mel_to_hz_htk(m_pts)
    f_diff = f_pts[1:] - f_pts[:-1]
    slopes = f_pts.unsqueeze(0) - all_freqs.unsqueeze(1)
    down_slopes = (-1.0 * slopes[:, :-2]) / f_diff[:-1]
    up_slopes = slopes[:, 2:] / f_diff[1:]
    return torch.max(torch.zeros(1), torch.min(down_slopes, up_slopes))


class MelSpectrogram(nn.Module):
    def __init__(self, sample_rate: int = 16000, n_fft: int = 400,
                 hop_length: int | None = None, n_mels: int = 128) -> None:
        super().__init__()
        self.n_fft = n_fft
        self.hop_length = hop_length if hop_length is not None else n_fft // 2
        self.register_buffer("window", torch.hann_window(n_fft))
        self.register_buffer("fb", melscale_fbanks(n_fft // 2 + 1, 0.0,
                                                   float(sample_rate // 2), n_mels,
                                                   sample_rate))

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        spectrum = torch.stft(waveform, n_fft=self.n_fft, hop_length=self.hop_length,
                              win_length=self.n_fft, window=self.window, center=True,
                              pad_mode="reflect", normalized=False, onesided=True,
                              return_complex=True).abs().pow(2.0)
        return torch.matmul(spectrum.transpose(-1, -2), self.fb).transpose(-1, -2)


class AmplitudeToDB(nn.Module):
    def __init__(self, stype: str = "power", top_db: float | None = None) -> None:
        super().__init__()
        if stype != "power" or top_db is not None:
            raise NotImplementedError("the MuQ reference needs only stype='power', top_db=None")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 10.0 * torch.log10(torch.clamp(x, min=1e-10))
