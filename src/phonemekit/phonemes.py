"""The phoneme inventory of both homeworks: one list, in the order that defines the label indices
(HW1P2's 40 frame classes; HW3P2's 41 CTC classes put the blank first, see CTC_PHONEMES)."""

PHONEMES = [
    "[SIL]", "AA", "AE", "AH", "AO", "AW", "AY", "B", "CH", "D", "DH", "EH", "ER", "EY",
    "F", "G", "HH", "IH", "IY", "JH", "K", "L", "M", "N", "NG", "OW", "OY", "P", "R", "S",
    "SH", "T", "TH", "UH", "UW", "V", "W", "Y", "Z", "ZH", "[SOS]", "[EOS]",
]
# The 40 frame classes; [SOS]/[EOS] only mark the ends of a transcript.
CLASSES = PHONEMES[:40]
NUM_CLASSES = len(CLASSES)
SOS, EOS = "[SOS]", "[EOS]"

# Older semesters (S22/F22) spelled three symbols differently; map them onto today's.
ALIASES = {"SIL": "[SIL]", "<sos>": SOS, "<eos>": EOS}

PHONEME_TO_INDEX = {p: i for i, p in enumerate(PHONEMES)}
for _old, _new in ALIASES.items():
    PHONEME_TO_INDEX[_old] = PHONEME_TO_INDEX[_new]

# --------------------------------------------------------------------------------------------
# HW3P2 (CTC): 41 classes, blank first, in the starter notebook's order ("DO NOT CHANGE").
# The order differs from HW1P2's: a class index means nothing across the two homeworks.

BLANK = 0
CTC_PHONEMES = [
    "", "[SIL]", "NG", "F", "M", "AE", "R", "UW", "N", "IY", "AW", "V", "UH", "OW", "AA", "ER",
    "HH", "Z", "K", "CH", "W", "EY", "ZH", "T", "EH", "Y", "AH", "B", "P", "TH", "DH", "AO", "G",
    "L", "JH", "OY", "SH", "D", "AY", "S", "IH",
]
# One character per class, same order: the Levenshtein distance and the CSV are on these.
CTC_CHARS = [
    " ", "-", "G", "f", "m", "@", "r", "u", "n", "i", "W", "v", "U", "o", "a", "R", "h", "z", "k",
    "C", "w", "e", "Z", "t", "E", "y", "A", "b", "p", "T", "D", "c", "g", "l", "j", "O", "S", "d",
    "Y", "s", "I",
]
NUM_CTC_CLASSES = len(CTC_PHONEMES)
CTC_INDEX = {p: i for i, p in enumerate(CTC_PHONEMES) if p}  # the blank is never a label
CTC_INDEX["SIL"] = CTC_INDEX["[SIL]"]  # the S22/F22 spelling
CHAR_TO_CTC = {c: i for i, c in enumerate(CTC_CHARS)}
# HW1P2 class index -> HW3P2 class index (an HW1P2 frame model's output in CTC terms)
HW1_TO_CTC = [CTC_INDEX[p] for p in CLASSES]


def to_ctc_indices(phonemes) -> list[int]:
    """['[SIL]', 'AH', 'B'] -> [1, 26, 27]; KeyError naming the phoneme that has no CTC class."""
    out = []
    for p in phonemes:
        i = CTC_INDEX.get(str(p))
        if i is None:
            raise KeyError(f"{str(p)!r} is not one of the 40 HW3P2 phonemes (phonemekit.phonemes.CTC_PHONEMES[1:])")
        out.append(i)
    return out


def to_string(indices) -> str:
    """CTC class indices -> the one-character string the metric and the CSV use ([1, 26] -> '-A')."""
    return "".join(CTC_CHARS[int(i)] for i in indices)


def from_string(s: str) -> list[int]:
    """The inverse of to_string; ValueError naming a character outside the map."""
    bad = sorted({c for c in s if c not in CHAR_TO_CTC or c == " "})
    if bad:
        raise ValueError(f"{bad} are not phoneme characters of the HW3P2 map (phonemekit.phonemes.CTC_CHARS[1:])")
    return [CHAR_TO_CTC[c] for c in s]
