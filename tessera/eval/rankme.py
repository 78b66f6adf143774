"""RankMe (Garrido, Balestriero, Najman, LeCun, ICML 2023, Eq. 1): the effective rank of embeddings.

For Z (N, K) with singular values s_1 >= ... >= s_min(N,K): p_k = s_k / ||s||_1 + eps and
RankMe(Z) = exp(-sum_k p_k log p_k). Singular values (not covariance eigenvalues), no centring, no
standardisation, eps added after the normalisation (1e-7, as implementations quoting the paper use),
so an identity gives slightly more than its rank and a rank-1 matrix slightly more than 1.
The value is bounded by min(N, K): compute it on a fixed, large sample (the paper uses 25,600 rows),
never per mini-batch.
"""

from __future__ import annotations

import torch
from torch import Tensor

EPS = 1e-7


def rankme(z: Tensor, eps: float = EPS) -> float:
    """RankMe of a (N, K) matrix (more dimensions are flattened to K), computed in float64."""
    if z.dim() < 2:
        raise ValueError(f"RankMe needs a (N, K) matrix, got shape {tuple(z.shape)}")
    z = z.reshape(z.shape[0], -1).double()
    singular = torch.linalg.svdvals(z)
    total = singular.sum()
    if total <= 0:
        return 0.0  # an all-zero matrix has no rank at all
    p = singular / total + eps
    return float(torch.exp(-(p * torch.log(p)).sum()))
