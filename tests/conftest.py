"""Shared test settings: the CI machine has 2 shared cores."""

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)


MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


@pytest.fixture
def small_objective():
    """A factory of tiny VideoMAE objectives: 4x16x16 clips, (2, 8, 8) tubelets, tube mask 0.75."""
    from tessera.core.decoder import MAEDecoder
    from tessera.core.encoder import Encoder
    from tessera.modalities.video.masking import TubeMasker
    from tessera.modalities.video.tokenizer import TubeletTokenizer
    from tessera.objectives.mae import MAEObjective

    def make(target_norm: str = "tubelet", seed: int = 0) -> MAEObjective:
        torch.manual_seed(0)
        tokenizer = TubeletTokenizer(32, frames=4, size=16, tubelet=(2, 8, 8))
        encoder = Encoder(32, 2, 2)
        decoder = MAEDecoder(32, 16, 1, 2, patch_dim=tokenizer.patch_dim, grid=tokenizer.grid)
        return MAEObjective(tokenizer, encoder, decoder, TubeMasker(tokenizer.grid, 0.75), "video", target_norm,
                            MEAN, STD, seed=seed)

    return make
