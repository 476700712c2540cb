"""The phoneme inventory of HW1P2: one list, in the order that defines the label indices."""

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
