"""What some tests need beyond requirements.txt, as skip markers that name the reason and the fix.
CI (.ci/run) installs all of it, so there these tests run."""

import pytest
import torch


def _beam_search_missing() -> str | None:
    """Why beam search cannot run here, or None when it can (through the kit's own beam_decode)."""
    from phonemekit.decode import beam_decode

    try:
        beam_decode(torch.zeros(1, 1, 41).log_softmax(-1), torch.tensor([1]), beam_width=2)
    except ImportError as e:
        return str(e)
    return None


BEAM_MISSING = _beam_search_missing()
beam_search = pytest.mark.skipif(
    BEAM_MISSING is not None,
    reason="beam search needs pyctcdecode (CI installs it): pip install --no-deps pyctcdecode pygtrie")


def skip_without_beam_search():
    """For a test whose beam half comes after checks that run anywhere."""
    if BEAM_MISSING is not None:
        pytest.skip("beam search needs pyctcdecode (CI installs it): pip install --no-deps pyctcdecode pygtrie")
