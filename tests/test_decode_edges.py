"""The metric, the beam-width choice and frame-to-sequence scoring at their edges: one utterance,
one sweep row, empty utterances, a flicker inside the second utterance, a malformed width."""

import numpy as np
import pandas as pd
import pytest

from phonemekit.decode import best_width, check_beam, frames_to_sequence, mean_distance
from phonemekit.phonemes import CLASSES

SIL, AH, B = (CLASSES.index(p) for p in ("[SIL]", "AH", "B"))


def test_an_empty_utterance_still_gets_its_own_empty_string_in_order():
    # offsets repeat for a zero-frame utterance, at the end or in the middle: one string per utterance
    frames = np.array([SIL, AH, AH, B])
    assert frames_to_sequence(frames, [0, 4, 4]) == ["-Ab", ""]
    assert frames_to_sequence(frames, [0, 1, 1, 4]) == ["-", "", "Ab"]
    assert frames_to_sequence(frames, [0, 2, 4, 4, 4]) == ["-A", "Ab", "", ""]


def test_a_flicker_dropped_inside_a_later_utterance_merges_its_neighbours_there():
    # utterance 2: B B AH B B with min_run=2 -> the AH flicker goes and the two B runs are one phoneme
    frames = np.array([SIL, SIL, SIL, B, B, AH, B, B])
    assert frames_to_sequence(frames, [0, 3, 8], min_run=2) == ["-", "b"]


def test_offsets_that_miss_the_frame_count_name_the_last_offset():
    with pytest.raises(ValueError, match="offsets end at frame 5 but there are 4 frame predictions"):
        frames_to_sequence(np.array([SIL, AH, AH, B]), [0, 2, 5])


def test_the_metric_on_no_utterances_says_so_instead_of_dividing_by_zero():
    with pytest.raises(ValueError, match="no utterances to compare"):
        mean_distance([], [])


def test_a_one_row_sweep_picks_its_width_and_an_empty_sweep_is_an_error():
    one = pd.DataFrame({"beam_width": [5], "distance": [7.0], "seconds": [1.0]})
    assert best_width(one) == 5
    with pytest.raises(ValueError, match="the sweep has no rows"):
        best_width(one.iloc[:0])


@pytest.mark.parametrize("width", ["five", None, 2.5, True, 0])
def test_a_beam_width_that_is_not_a_whole_number_is_a_clear_value_error(width):
    with pytest.raises(ValueError, match=f"beam_width={width!r}: give a whole number >= 1"):
        check_beam(width, "cpu")
