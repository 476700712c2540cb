"""phonemekit: a notebook-first kit for CMU 11-785 HW1P2 (frame-level phoneme classification)."""

from .phonemes import CLASSES, NUM_CLASSES, PHONEMES

__version__ = "0.1.0"
__all__ = ["PHONEMES", "CLASSES", "NUM_CLASSES", "__version__"]
