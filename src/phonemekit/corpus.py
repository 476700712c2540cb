"""The corpus both homeworks read: find the data, list and pair its files, read and check them,
normalise, take training statistics, choose a subset, count.

HW1P2 (phonemekit.data.AudioDataset) and HW3P2 (phonemekit.sequences.UtteranceDataset) read the
same Kaggle layout through these functions, so a rule (sorted names, which files are skipped,
what a bad file is, where global statistics come from) exists once:

    <root>/<partition>/mfcc/<utterance>.npy          float (T, F)
    <root>/<partition>/transcript/<utterance>.npy    [SOS] ... [EOS]   (not for test-clean on Kaggle)
"""

from __future__ import annotations

import numbers
import os
from pathlib import Path

import numpy as np

PARTITIONS = ("train-clean-100", "train-clean-360", "dev-clean", "test-clean")
NORMALIZATIONS = ("cepstral", "global", "minmax", "none")
REPO_ROOT = Path(__file__).resolve().parents[2]
DEMO_ROOT = REPO_ROOT / "data" / "demo"
FP16_MAX = 65504.0
FP32_MAX = float(np.finfo(np.float32).max)
SYSTEM_FILES = {"Thumbs.db", "desktop.ini"}  # left in folders by Windows (macOS's are hidden: .DS_Store, ._x)


# --------------------------------------------------------------------------------------------
# Finding the data


def broken_link(path: Path) -> str:
    """' (a symbolic link to X, which does not exist ...)' when path is such a link, else ''."""
    if path.is_symlink() and not path.exists():
        return f" (a symbolic link to {os.readlink(path)}, which does not exist or loops back on itself)"
    return ""


def subfolders(d: Path) -> list[Path]:
    try:
        return [c for c in d.iterdir() if c.is_dir()]
    except OSError:  # an unreadable folder (permissions, a stale mount) holds no data for us
        return []


def find_root(path, skip=()) -> Path:
    """The folder that holds the partitions (train-clean-100/, dev-clean/, test-clean/).

    The Kaggle zip's top folder changes by semester (11785-f24-hw1p2, ...), so look below
    `path` (up to three levels) for a folder with a partition in it. Folders in `skip` are passed over.
    """
    path = Path(path).expanduser()
    if not path.is_dir():
        raise FileNotFoundError(
            f"data folder {path} does not exist{broken_link(path)}: pass the folder where the Kaggle zip was "
            "extracted (it holds train-clean-100/, dev-clean/, test-clean/)"
        )
    skip = {Path(s).resolve() for s in skip}
    if path.name in PARTITIONS and (path / "mfcc").is_dir() and path.resolve() not in skip:
        return path.parent  # given a partition folder itself: its parent holds the partitions
    frontier = [path]
    for _ in range(4):
        found = sorted(d for d in frontier if any((d / p).is_dir() for p in PARTITIONS)
                       and d.resolve() not in skip)
        if found:
            return found[0]
        frontier = sorted(c for d in frontier for c in subfolders(d))
    raise FileNotFoundError(
        f"no partition ({', '.join(PARTITIONS)}) found in {path} or three levels below: "
        "download the data (phonemekit.submit.kaggle_download or `kaggle competitions download`) "
        "and extract it there"
    )


_demo_notice_given = False


def default_root(verbose: bool = True) -> Path:
    """Kaggle data when it can be found, else the shipped demo corpus (with a one-line notice).

    Looked for, in order: $PHONEMEKIT_DATA, ./data, <repo>/data, /content/data (Colab).
    """
    candidates = [os.environ.get("PHONEMEKIT_DATA"), "data", REPO_ROOT / "data", "/content/data"]
    for c in candidates:
        if not c or not Path(c).is_dir():
            continue
        try:
            return find_root(c, skip={DEMO_ROOT})
        except FileNotFoundError:
            continue
    if not DEMO_ROOT.is_dir():  # an installed package ships no demo corpus
        raise FileNotFoundError(
            "no Kaggle data found in $PHONEMEKIT_DATA, ./data or /content/data, and no demo corpus "
            f"at {DEMO_ROOT}: pass root= (the folder holding train-clean-100/), set PHONEMEKIT_DATA, "
            "or run from a clone of the kit, which ships data/demo/"
        )
    global _demo_notice_given
    if verbose and not _demo_notice_given:  # once per process: a search builds many datasets
        _demo_notice_given = True
        print(f"phonemekit: no Kaggle data found (set PHONEMEKIT_DATA or pass root=), "
              f"using the demo corpus in {DEMO_ROOT}")
    return DEMO_ROOT


def is_demo(root) -> bool:
    return Path(root).resolve() == DEMO_ROOT.resolve()


# --------------------------------------------------------------------------------------------
# Listing and pairing the files


def listing(folder: Path) -> list[Path]:
    """The <utterance>.npy files of mfcc/ or transcript/, sorted by name (os.listdir's order is
    arbitrary, and the test ids follow this order).

    Hidden files (.DS_Store, ._<id>.npy from a macOS zip) and Windows' Thumbs.db/desktop.ini are
    skipped. Anything else is an error: a skipped utterance would shift every later test id.
    """
    files = []
    with os.scandir(folder) as entries:
        for e in entries:
            p = folder / e.name
            if e.name.startswith(".") or e.name in SYSTEM_FILES:
                continue
            if p.suffix != ".npy":
                fix = (f"rename it to {p.stem}.npy" if p.suffix.lower() == ".npy" else
                       f"move it out of {folder}, which holds only <utterance>.npy files")
                raise ValueError(f"{p} is not an utterance file: {fix} (skipping it would drop an utterance)")
            try:
                regular = e.is_file()  # follows a link; no system call for a plain file
            except OSError:  # a link that loops
                regular = False
            if not regular:  # a folder, or a link to nothing
                if broken_link(p):
                    raise FileNotFoundError(f"{p} cannot be read{broken_link(p)}: link it to the file, "
                                            "or copy the file there")
                raise ValueError(f"{p} is not a file: move it out of {folder}, which holds only <utterance>.npy files")
            files.append(p)
    return sorted(files, key=lambda p: p.name)


def mfcc_files(root: Path, partition: str) -> list[Path]:
    """The mfcc/*.npy files of a partition, in sorted order (an error naming the folder when there are none)."""
    root = Path(root)
    part = root / partition
    mfcc_dir = part / "mfcc"
    if not part.is_dir():
        have = sorted(d.name for d in subfolders(root))
        raise FileNotFoundError(f"partition folder {part} is missing{broken_link(part)} (found {have}); "
                                "check `partition` and `root`")
    if not mfcc_dir.is_dir():
        raise FileNotFoundError(f"{mfcc_dir} is missing{broken_link(mfcc_dir)}: each partition holds mfcc/ "
                                "(and transcript/ except test)")
    mfcc = listing(mfcc_dir)
    if not mfcc:
        raise FileNotFoundError(f"{mfcc_dir} holds no .npy files; re-extract {partition} from the Kaggle zip")
    return mfcc


def paired_transcripts(mfcc: list[Path], mfcc_dir: Path, tr_dir: Path) -> list[Path]:
    """The transcript files of tr_dir, one per mfcc file with the same name, in the same order."""
    tr = listing(tr_dir)
    a, b = [p.name for p in mfcc], [p.name for p in tr]
    if a != b:
        only_m, only_t = sorted(set(a) - set(b))[:3], sorted(set(b) - set(a))[:3]
        raise ValueError(
            f"{mfcc_dir} has {len(a)} files and {tr_dir} has {len(b)}, and their names differ "
            f"(only in mfcc: {only_m}, only in transcripts: {only_t}); each utterance needs both files"
        )
    return tr


def utterance_files(root: Path, partition: str, transcripts: Path | None = None, subset: float = 1.0,
                    subset_seed: int = 0) -> tuple[list[Path], list[Path] | None]:
    """(mfcc files, transcript files or None) of the utterances a dataset loads: sorted, paired
    with the transcripts of the folder `transcripts` (None: features only), and subset."""
    mfcc = mfcc_files(root, partition)
    tr = None
    if transcripts is not None:
        if not transcripts.is_dir():
            raise FileNotFoundError(
                f"{transcripts} is missing{broken_link(transcripts)}: labels are needed for {partition} "
                "(pass with_labels=False to load features only)"
            )
        tr = paired_transcripts(mfcc, mfcc[0].parent, transcripts)
    pick = subset_indices(len(mfcc), subset, subset_seed)
    if pick is not None:
        mfcc = [mfcc[i] for i in pick]
        tr = [tr[i] for i in pick] if tr else None
    return mfcc, tr


# --------------------------------------------------------------------------------------------
# Options


def check_number(name: str, value, whole: bool = False):
    """A numeric argument as given: text is refused, not parsed (phonemekit.config.Config parses
    the text of YAML files and the command line)."""
    if isinstance(value, (str, bytes, bool)) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name}={value!r} must be a number, not {type(value).__name__}: "
                         f"pass e.g. {name}={1 if whole else 0.5}")
    if whole and int(value) != value:
        raise ValueError(f"{name}={value!r} must be a whole number")
    return int(value) if whole else float(value)


def check_subset(subset: float, partition: str, unit: str) -> None:
    """A fraction in (0, 1], and all of a test partition: Kaggle scores every test item."""
    if not 0 < subset <= 1:
        raise ValueError(f"subset={subset} must be a fraction in (0, 1]")
    if partition.startswith("test") and subset < 1:
        raise ValueError(f"subset={subset} on {partition}: Kaggle scores every test {unit}, so test is never subset")


def subset_indices(n: int, subset: float, seed: int = 0) -> np.ndarray | None:
    """The subset rule: a random but fixed choice of round(subset * n) utterances (at least one),
    in sorted order; None for all of them."""
    if subset >= 1:
        return None
    keep = max(1, round(subset * n))
    return np.sort(np.random.default_rng(seed).choice(n, keep, replace=False))


def epoch_seed(seed: int, epoch: int) -> int:
    """The seed of an epoch's shuffle: the same (seed, epoch) gives the same order on every rank
    and after a resume, and neighbouring seeds or epochs give unrelated orders."""
    return (int(seed) * 1_000_003 + int(epoch)) % 2**63


def check_normalize(normalize: str) -> None:
    if normalize not in NORMALIZATIONS:
        raise ValueError(f"normalize={normalize!r}; choose one of {NORMALIZATIONS}")


# --------------------------------------------------------------------------------------------
# Reading and checking one file


def load_npy(path: Path) -> np.ndarray:
    try:
        return np.load(path, allow_pickle=False)
    except Exception as e:  # a truncated file, a pickle, not numpy at all
        raise ValueError(
            f"{path} is not a readable .npy file ({type(e).__name__}: {e}); re-extract it "
            "from the Kaggle zip"
        ) from None


def npy_header(path: Path) -> tuple[tuple, np.dtype]:
    """Shape and dtype from the .npy header alone (a few hundred bytes, not the array)."""
    try:
        with open(path, "rb") as f:
            version = np.lib.format.read_magic(f)
            read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            shape, _, dtype = read(f)
        return shape, dtype
    except Exception as e:
        raise ValueError(
            f"{path} is not a readable .npy file ({type(e).__name__}: {e}); re-extract it "
            "from the Kaggle zip"
        ) from None


def feature_shape(path: Path) -> tuple[int, int]:
    """(frames, features) of an mfcc file from its header, checked."""
    shape, dtype = npy_header(path)
    if len(shape) != 2:
        raise ValueError(f"{path} has shape {shape}; expected (frames, features)")
    if not (np.issubdtype(dtype, np.floating) or np.issubdtype(dtype, np.integer)):
        raise ValueError(f"{path} holds {dtype} values; features must be numbers (frames, features)")
    if shape[0] == 0:
        raise ValueError(f"{path} is an empty utterance (0 frames); remove it together with its transcript")
    if shape[1] == 0:
        raise ValueError(f"{path} has 0 features per frame (shape {shape}); re-extract it from the Kaggle zip")
    return int(shape[0]), int(shape[1])


def feature_shapes(files: list[Path]) -> list[tuple[int, int]]:
    """feature_shape of every file, all with one feature dimension."""
    shapes = [feature_shape(p) for p in files]
    f = shapes[0][1]
    odd = next((p for p, (_, g) in zip(files, shapes) if g != f), None)
    if odd is not None:
        raise ValueError(f"feature dimension differs between files: {files[0].name} has {f}, "
                         f"{odd} has {feature_shape(odd)[1]}; all files of a partition must match")
    return shapes


def load_features(path: Path) -> np.ndarray:
    """An mfcc file's (T, F) values as stored, checked to be finite numbers."""
    x = load_npy(path)
    if x.ndim != 2 or x.size == 0 or not (np.issubdtype(x.dtype, np.floating) or np.issubdtype(x.dtype, np.integer)):
        feature_shape(path)  # raises the matching error
    if not np.isfinite(x).all():
        bad = int((~np.isfinite(x)).any(axis=1).argmax())
        raise ValueError(f"{path} has NaN or Inf features (first at frame {bad}); re-extract the file "
                         "or remove this utterance together with its transcript")
    return x


def range_error(path: Path, dtype: str, normalize: str) -> str:
    if dtype == "float16":
        return (f"{path} has values beyond float16's range ({FP16_MAX:g}) after normalize={normalize!r}; "
                "use dtype=torch.float32 or a normalisation")
    return (f"{path} has values beyond float32's range ({FP32_MAX:.3g}) after normalize={normalize!r}; "
            "use normalize='cepstral' or 'minmax', which scale each utterance, or rescale the file")


def _over_time(x: np.ndarray, how: str) -> np.ndarray | None:
    """Cepstral (each coefficient mean 0, std 1) or min-max ([0, 1]) normalisation over time (axis 0)
    of one utterance, in x's dtype; None when a statistic overflows it."""
    with np.errstate(over="ignore", invalid="ignore"):
        if how == "cepstral":
            shift, spread = x.mean(axis=0), x.std(axis=0)
        else:
            shift = x.min(axis=0)
            spread = x.max(axis=0) - shift
    if not (np.isfinite(shift).all() and np.isfinite(spread).all()):
        return None
    return (x - shift) / np.where(spread > 0, spread, 1)  # a constant coefficient -> 0, not NaN


def normalize(x: np.ndarray, how: str, stats=None) -> np.ndarray:
    """One utterance normalised over time: "cepstral" (the course's), "minmax", "global" (with
    stats = (mean, std) of the training frames) or "none". The caller stores it (write_features)."""
    if how == "none":
        return x
    if how == "global":
        return (x - stats[0]) / stats[1]
    out = _over_time(x.astype(np.float32, copy=False), how)  # float32: fast, and right for real data
    if out is None:
        # squares of float32 values beyond ~1e19 overflow, and float64 ones may not fit float32 at
        # all: both normalisations ignore a coefficient's scale, so scale each into [-1, 1] first
        x = x.astype(np.float64)
        scale = np.abs(x).max(axis=0)
        out = _over_time(x / np.where(scale > 0, scale, 1), how)
    return out


def write_features(out: np.ndarray, path: Path, how: str, stats=None) -> int:
    """Read the mfcc file `path`, normalise it and store it in `out` (rows of the storage array,
    float32 or float16); return its frame count. The one overflow check: values the storage
    cannot hold are an error naming the file, whatever the normalisation."""
    x = load_features(path)
    if x.shape != (len(out), out.shape[1]):
        raise ValueError(f"{path} changed while loading (shape {x.shape}, was {(len(out), out.shape[1])}); load again")
    with np.errstate(over="ignore", invalid="ignore"):  # checked on the stored values, just below
        out[...] = normalize(x, how, stats)
    if not np.isfinite(out).all():
        raise ValueError(range_error(path, out.dtype.name, how))
    return len(x)


# --------------------------------------------------------------------------------------------
# Global statistics: always those of the training frames


def train_partition(root: Path) -> str:
    for p in PARTITIONS:
        if p.startswith("train") and (Path(root) / p / "mfcc").is_dir():
            return p
    raise FileNotFoundError(
        f"normalize='global' needs statistics of a training partition, and {root} has none: "
        "pass stats=train_dataset.stats (or stats=compute_stats(root_with_train))"
    )


def compute_stats(root=None, partition: str = "train-clean-100", files=None) -> tuple[np.ndarray, np.ndarray]:
    """Per-coefficient mean and std over every frame of a partition (for normalize="global")."""
    files = files or mfcc_files(find_root(root), partition)
    n, s, ss = 0, 0.0, 0.0
    for p in files:
        x = load_features(p).astype(np.float64)
        if np.abs(x).max() > FP32_MAX:  # its statistics would not fit float32 either
            raise ValueError(range_error(p, "float32", "global"))
        n, s, ss = n + len(x), s + x.sum(0), ss + (x * x).sum(0)
    mean = s / n
    with np.errstate(over="ignore", invalid="ignore"):
        std = np.sqrt(np.maximum(ss / n - mean * mean, 0))
    if not (np.isfinite(std).all() and np.abs(std).max() <= FP32_MAX):  # squares beyond float64's range
        raise ValueError(f"the features of {files[0].parent} are too large for global statistics "
                         "(their squares overflow); use normalize='cepstral', which handles them")
    return mean.astype(np.float32), np.where(std > 0, std, 1).astype(np.float32)


def check_stats(stats, f=None):
    """(mean, std) as float32 vectors of f coefficients, finite, with no zero std."""
    mean, std = (np.asarray(s, np.float32).reshape(-1) for s in stats)
    if len(mean) != len(std) or (f is not None and len(mean) != f):
        raise ValueError(f"stats hold {len(mean)} means and {len(std)} stds; the data has {f} coefficients: "
                         "pass the stats of a training set with the same features")
    if not (np.isfinite(mean).all() and np.isfinite(std).all()):
        raise ValueError("stats hold NaN or Inf; pass the statistics of a training set (train.stats)")
    return mean, np.where(std > 0, std, 1).astype(np.float32)  # a constant coefficient -> no Inf


def same_stats(a, b) -> bool:
    """Whether two (mean, std) pairs (or None) are the same statistics, as stored (float32)."""
    if a is None or b is None:
        return a is None and b is None
    return all(np.array_equal(np.asarray(x, np.float32).reshape(-1), np.asarray(y, np.float32).reshape(-1))
               for x, y in zip(a, b))


def stats_source(root: Path, partition: str, normalize: str, stats, files: list[Path]):
    """Where a dataset's global statistics come from: (stats checked or None, files to compute
    them from or None, a description for the cache key). Given stats are used as they are;
    otherwise a training partition uses its own (loaded) frames and dev/test those of the
    training partition, never their own."""
    if normalize != "global":
        return None, None, None
    if stats is not None:
        stats = check_stats(stats)
        return stats, None, [stats[0].tolist(), stats[1].tolist()]
    if partition.startswith("train"):
        return None, files, "own frames"
    train = train_partition(root)
    return None, mfcc_files(root, train), train


def partition_files(root: Path, partition: str, transcripts, subset: float, subset_seed: int, normalize: str, stats):
    """What both datasets read first: the paired files (a fixed subset, sorted), checked against
    the training partition's feature dimension, and the statistics to normalise with (for
    "global" the training partition's, never dev's or test's own). Returns (mfcc files,
    transcript files or None, stats, the files the stats come from, the stats' cache key)."""
    mfcc, tr = utterance_files(root, partition, transcripts, subset, subset_seed)
    check_feature_dim(root, partition, feature_shape(mfcc[0])[1])
    stats, stats_files, stats_key = stats_source(root, partition, normalize, stats, mfcc)
    return mfcc, tr, stats, stats_files, stats_key


def build_stats(stats, files, f: int):
    """The statistics a dataset normalises with: the given ones, else those of `files` (from
    stats_source), checked to have f coefficients."""
    return check_stats(stats if stats is not None else compute_stats(files=files), f)


# --------------------------------------------------------------------------------------------
# Training and validation sets that fit together


def check_feature_dim(root: Path, partition: str, f: int) -> None:
    """For a dev/test partition: an error naming both partitions when its feature dimension is not
    the training partition's (of the same root), found while loading, before any epoch."""
    if partition.startswith("train"):
        return
    try:
        train = train_partition(root)
        want = feature_shape(mfcc_files(root, train)[0])[1]
    except (FileNotFoundError, ValueError):  # no (readable) training data here: nothing to compare
        return
    if want != f:
        raise ValueError(f"{want} features per frame in {train} but {f} in {partition} (in {root}): "
                         "a model sized for one fails on the other; use one semester's data for both")


def check_compatible(train, val) -> None:
    """A ValueError naming both sets when val's frames are not prepared like train's: the feature
    dimension, the context and boundary (HW1P2), the normalisation and its statistics. Either
    kind of dataset (AudioDataset, UtteranceDataset). Call it before training: a model sized for
    train's frames would fail on val only after a whole epoch."""
    a, b = f"{train.partition} in {train.root}", f"{val.partition} in {val.root}"
    if type(train) is not type(val):
        raise ValueError(f"{a} is a {type(train).__name__} but {b} a {type(val).__name__}: "
                         "build both for the same homework")
    problems = []
    if train.n_features != val.n_features:
        problems.append(f"{train.n_features} features per frame in {a} but {val.n_features} in {b} "
                        "(use one semester's data for both)")
    for name in ("context", "boundary", "normalize"):
        if getattr(train, name, None) != getattr(val, name, None):
            problems.append(f"{name}={getattr(train, name)!r} for {a} but {name}={getattr(val, name)!r} for {b}")
    if train.normalize == val.normalize == "global" and not same_stats(train.stats, val.stats):
        problems.append(f"{b} is normalised with other global statistics than {a} (pass stats=train.stats)")
    if problems:
        raise ValueError("the training and validation sets do not fit together: " + "; ".join(problems))


# --------------------------------------------------------------------------------------------
# What a partition holds, from the headers alone


def utterance_shapes(root, partition: str, limit: int | None = None) -> list[tuple[int, int]]:
    """(frames, features) of each utterance of a partition, in sorted order, from the .npy headers
    alone (nothing is loaded); only the first `limit` files when given."""
    files = mfcc_files(find_root(root), partition)
    return [feature_shape(f) for f in files[:limit]]


def count_utterances(root, partition: str = "test-clean") -> int:
    """Utterances in a partition as the datasets load them (hidden ._x.npy files are not counted)."""
    try:
        return len(mfcc_files(find_root(root), partition))
    except FileNotFoundError as e:
        raise FileNotFoundError(f"{e}; or give --n-frames N (the number of test utterances)") from None


def count_frames(root, partition: str = "test-clean") -> int:
    """Frames in a partition as the datasets load them, from the .npy headers (nothing is loaded)."""
    try:
        return sum(t for t, _ in utterance_shapes(root, partition))
    except FileNotFoundError as e:
        raise FileNotFoundError(f"{e}; or give --n-frames") from None


def n_features(root, partition: str = "train-clean-100") -> int:
    """The feature dimension of the data (28 today, 27 or fewer in older semesters)."""
    for part in (partition, "dev-clean", "test-clean"):
        try:
            return utterance_shapes(root, part, limit=1)[0][1]
        except FileNotFoundError:
            continue
    raise FileNotFoundError(f"no mfcc/*.npy under {root}: pass --features N")


def has_answers(folder) -> bool:
    """True when a transcript folder holds answers: an .npy file the loader would read. A missing
    folder and an empty one (or one of hidden files only) are no answers."""
    try:
        return folder is not None and Path(folder).is_dir() and bool(listing(Path(folder)))
    except (FileNotFoundError, OSError):
        return False


def has_test_answers(root, partition: str = "test-clean") -> bool:
    """True for a corpus that ships test transcripts (the demo corpus), which Kaggle's data does not."""
    return root is not None and has_answers(Path(root) / partition / "transcript")


def make_dir(directory: Path, setting: str = "checkpoint_dir", fix: str | None = None) -> Path:
    """mkdir -p, with an error that names the setting (and the fix) when a part of the path is a file."""
    directory = Path(directory).expanduser()
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        part = next((p for p in [directory, *directory.parents] if p.exists() and not p.is_dir()), directory)
        raise ValueError(f"{setting}={str(directory)!r}: {part} is a file, not a folder; "
                         f"{fix or f'choose another {setting}'}") from None
    return directory


def training_stats(normalize: str, stats):
    """The training statistics a checkpoint holds (ckpt["stats"]: a dict of mean/std, or a pair of
    lists), as float32 arrays for a test set; None when the normalisation needs none. normalize="global"
    without them is a ValueError: test frames must be scaled as in training."""
    if normalize == "global" and stats is None:
        raise ValueError("normalize='global' needs the training statistics: pass stats=ckpt['stats'] from the "
                         "checkpoint (load_checkpoint returns it), so test frames are scaled as in training")
    if stats is None:
        return None
    if isinstance(stats, dict):
        stats = (stats["mean"], stats["std"])
    return tuple(np.asarray(s, dtype=np.float32) for s in stats)
