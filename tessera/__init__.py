"""Tessera: self-supervised pretraining for audio, video, 3D volumes and tables on one token core."""

__version__ = "0.1.0"
