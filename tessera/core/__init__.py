"""Modality-agnostic pieces: positions, blocks, the encoder, the MAE decoder, masks, sizes."""
