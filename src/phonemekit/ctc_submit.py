"""HW3P2 submission: predict every test utterance, write the CSV, check it, score it locally.

    test = UtteranceDataset(root, "test-clean")                    # file order, no labels
    preds = predict_ctc(model, test, beam_width=10)                # one string per utterance
    write_ctc_submission(preds, "submission.csv", sample=root / "sample_submission.csv")
    validate_ctc_submission("submission.csv", len(test), sample=root / "sample_submission.csv")
    score_ctc_submission("submission.csv", answers)                # mean Levenshtein distance
    frame_baseline("runs/cpu-demo/best.pt", root)                  # an HW1P2 model, scored the HW3P2 way
    kaggle_submit_ctc("submission.csv", "<competition>", "message", sample=root / "sample_submission.csv")

The file has one row per test utterance in sorted file order: an integer id 0..N-1 and the
predicted phoneme string in the one-character map. The header follows the competition's
sample file when given (F24: index,label; older: id,predictions).
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from . import csvfile
from .csvfile import MISSING, Spec, header_names, read_any_separator, read_sample, sample_header
from .decode import beam_decode, frames_to_sequence, greedy_decode, mean_distance
from .phonemes import CLASSES, CTC_CHARS, to_string
from .sequences import SequenceLoader, UtteranceDataset
from .submit import evaluating, model_device

HEADER = ("index", "label")  # the F24 starter's; a competition's sample file overrides it
SILENCE = CTC_CHARS[1]  # appended to a prediction that Kaggle would read as missing ("" or "nan")
_ALLOWED = set(CTC_CHARS[1:])  # every phoneme character; the blank (" ") never appears


def predict_ctc(model, dataset: UtteranceDataset, batch_size: int = 32, device=None, beam_width: int = 1,
                amp_dtype=None, bucketing: bool = False, workers=None, backend: str = "auto",
                progress: bool = False) -> list[str]:
    """The predicted string of every utterance of `dataset`, in its (sorted file) order.

    Eval mode, inference mode, the model put back in the mode it was in. beam_width=1: greedy.
    A beam runs on the GPU where torchaudio's cuda_ctc_decoder can (a batch per call), else on
    every CPU core (workers=None; phonemekit.decode.beam_decode), the model run once over the
    whole set first. bucketing=True batches utterances of similar length (less padding); the
    strings still come back in file order. An utterance shorter than the model can downsample
    (a 1-frame test file and a pyramid) is padded with zero frames (the normalised mean) to the
    fewest it needs, and said so: every test row gets a prediction.
    """
    from . import beam_cpu
    from .decode import check_beam

    kind = check_beam(beam_width, backend, model_device(model, device))
    device = model_device(model, device)
    loader = SequenceLoader(dataset, batch_size, shuffle=False, bucketing=False, device=device)
    order = torch.arange(len(dataset))
    if bucketing:  # the loader serves a test set only in file order: hand it the batches by length
        order = torch.sort(torch.from_numpy(np.asarray(dataset.lengths)), stable=True).indices
        loader.batches = lambda: list(order.split(batch_size))
    shortest = _shortest_input(model, dataset)
    out, arrays = [], []
    with evaluating(model):
        for batch in loader:
            x, xl = batch[0], batch[1]
            if shortest is not None and int(xl.min()) < shortest:
                x, xl = _pad_short(x, xl, shortest)
            amp = torch.amp.autocast(device.type, dtype=amp_dtype) if amp_dtype is not None else contextlib.nullcontext()
            with amp:
                log_probs, out_lengths = model(x, xl)
            if kind == "greedy":
                out += greedy_decode(log_probs, out_lengths)
            elif kind == "cuda":
                out += beam_decode(log_probs, out_lengths, beam_width, backend="cuda")
            else:  # one pool of CPU workers for the whole set, after the model has run
                lp = log_probs.float().log_softmax(-1).cpu().numpy()
                arrays += [lp[i, :t] for i, t in enumerate(out_lengths.cpu().tolist())]
    if kind == "cpu":
        n = beam_cpu.resolve_workers(workers, len(arrays))
        print(f"phonemekit: beam search (width {beam_width}) of {len(arrays):,} utterances on the CPU with "
              f"pyctcdecode, {f'{n} worker processes' if n > 1 else 'in this process'}")
        out = beam_cpu.decode_arrays(arrays, beam_width, workers=n, progress=progress)
    if len(out) != len(dataset):
        raise RuntimeError(f"predicted {len(out)} utterances for a dataset of {len(dataset)}")
    in_file_order = [""] * len(out)
    for i, p in zip(order.tolist(), out):
        in_file_order[i] = p
    return in_file_order


def _shortest_input(model, dataset) -> int | None:
    """The fewest input frames the kit's model needs for one output frame, when some utterance of
    `dataset` is shorter (said once); None otherwise or for a model the kit did not build."""
    from .ctc_model import min_input_frames

    config = getattr(model, "config", None)
    if not isinstance(config, dict) or not len(dataset):
        return None
    need = min_input_frames(**config)
    short = int((np.asarray(dataset.lengths) < need).sum())
    if not short:
        return None
    print(f"phonemekit: {short} utterance(s) of {dataset.partition} are shorter than the {need} frames this model "
          "needs for one output frame: padded with zero frames (the normalised mean) to that length")
    return need


def _pad_short(x: torch.Tensor, lengths: torch.Tensor, need: int):
    if x.shape[1] < need:
        x = torch.nn.functional.pad(x, (0, 0, 0, need - x.shape[1]))
    return x, lengths.clamp(min=need)


def log_probs_of(model, dataset: UtteranceDataset, batch_size: int = 32, device=None):
    """The model run once over `dataset` in file order: ([log-prob batches (B, T', 41), on the
    model's device], [their output lengths]), for decoding the same output several ways (beam_sweep)."""
    device = model_device(model, device)
    shortest = _shortest_input(model, dataset)
    batches, lengths = [], []
    with evaluating(model):
        for batch in SequenceLoader(dataset, batch_size, shuffle=False, bucketing=False, device=device):
            x, xl = batch[0], batch[1]
            if shortest is not None and int(xl.min()) < shortest:
                x, xl = _pad_short(x, xl, shortest)
            log_probs, out_lengths = model(x, xl)
            batches.append(log_probs.float())
            lengths.append(out_lengths)
    return batches, lengths


def sweep_widths(model, dataset: UtteranceDataset, widths=(1, 5, 20, 50), batch_size: int = 32, device=None,
                 workers=None, backend: str = "auto", progress: bool = False):
    """Decode a labelled partition (dev) at several beam widths from one run of the model: a
    DataFrame with, per width, the mean Levenshtein distance, seconds and utterances/s
    (phonemekit.decode.beam_sweep); phonemekit.decode.best_width picks the width to use."""
    from .decode import beam_sweep, check_beam

    device = model_device(model, device)
    for w in widths:  # every width checked before the model runs
        check_beam(w, backend, device)
    batches, lengths = log_probs_of(model, dataset, batch_size, device)
    return beam_sweep(batches, lengths, answers(dataset), widths, workers=workers, backend=backend,
                      progress=progress)


def ctc_test_dataset(config, root=None, stats=None, with_labels=None, partition: str = "test-clean") -> UtteranceDataset:
    """The test utterances prepared as the config prepared training (normalisation; `stats`: the
    training statistics a checkpoint holds, ckpt["stats"], for normalize="global"). File order."""
    from .corpus import training_stats

    normalize = getattr(config, "normalize", "cepstral")
    stats = training_stats(normalize, stats)
    return UtteranceDataset(root, partition, normalize=normalize, stats=stats, with_labels=with_labels)


def answers(dataset: UtteranceDataset) -> list[str]:
    """The true strings of a labelled dataset (the demo's test set: with_labels=True), in order."""
    if dataset.labels is None:
        raise ValueError(f"{dataset.partition} was loaded without transcripts: pass with_labels=True")
    return [to_string(dataset[u][1].tolist()) for u in range(len(dataset))]


def _check_ctc_labels(path, labels: pd.Series, sample=None, sample_labels=None) -> None:
    """HW3P2's label rule: characters of the one-character map only (no blanks, no separators)."""
    for row, s in enumerate(labels):
        extra = set(s) - _ALLOWED
        if extra:
            raise ValueError(
                f"{path}: row {row} has characters {sorted(extra)} outside the phoneme map "
                "(phonemekit.phonemes.CTC_CHARS[1:]): write one-character phonemes, blanks removed, "
                "no separators (phonemekit.decode gives such strings)")


CTC = Spec(unit="test utterance", writer="write_ctc_submission", header=HEADER, check_labels=_check_ctc_labels,
           missing_fix=f"write it with write_ctc_submission, which appends {SILENCE!r} (silence) to a prediction "
                       "that Kaggle would read as missing ('' -> '-', 'nan' -> 'nan-')")


def _survives(prediction: str) -> str:
    """The prediction as Kaggle will read it back: "" and "nan", "null", "-nan" (N AA N ...) are
    NaN to pandas' reader, quoted or not, so they get one more silence at the end."""
    while prediction in MISSING:
        prediction += SILENCE
    return prediction


def write_ctc_submission(predictions, path="submission.csv", header=HEADER, sample=None) -> Path:
    """Write `header` (the sample file's when given) and one row per utterance: id 0..N-1 and its
    string. A prediction that Kaggle would read as missing gets one more silence ('' -> '-',
    'nan' -> 'nan-'), one edit at most, instead of a missing cell."""
    if isinstance(predictions, (str, bytes)):
        raise ValueError(f"predictions is one string ({predictions[:40]!r}): pass a list with one string per "
                         "test utterance")
    preds = [str(p) for p in predictions]
    if not preds:
        raise ValueError("no predictions: pass one string per test utterance")
    bad = next((i for i, p in enumerate(preds) if set(p) - _ALLOWED), None)
    if bad is not None:
        raise ValueError(f"prediction {bad} ({preds[bad][:40]!r}) has characters outside the phoneme map "
                         f"{sorted(set(preds[bad]) - _ALLOWED)}: decode with phonemekit.decode (blanks removed)")
    header = sample_header(sample) if sample is not None else header_names(header)
    return csvfile.write(path, [_survives(p) for p in preds], header)


def validate_ctc_submission(path, n_utterances: int, sample=None, header=HEADER) -> bool:
    """Check an HW3P2 CSV; ValueError saying what is wrong and how to fix it, True when fine.

    Checked: the header (the sample's when given), no extra index column, comma-separated, one
    row per test utterance, the ids 0..N-1 each once (in any row order: Kaggle matches rows by id;
    a note says so), no label that Kaggle reads as missing (empty, "nan", "null", quoted or not),
    only characters of the phoneme map.
    """
    csvfile.check(path, n_utterances, CTC, sample, header)
    return True


def score_ctc_submission(path, truth) -> float:
    """Mean Levenshtein distance of a submission CSV against the true strings (a list, or a
    labelled UtteranceDataset), row matched to utterance by id. The file is validated first,
    whatever its two column names."""
    if isinstance(truth, UtteranceDataset):
        truth = answers(truth)
    truth = [str(t) for t in truth]
    return mean_distance(list(csvfile.labels_by_id(path, len(truth), CTC)), truth)


def has_ctc_answers(root, partition: str = "test-clean") -> bool:
    """True when `partition` ships its phoneme sequences (the demo's test set does; Kaggle's has none):
    a transcript folder with at least one file in it."""
    from .corpus import has_answers
    from .sequences import transcript_folder

    return root is not None and has_answers(transcript_folder(root, partition))


# --------------------------------------------------------------------------------------------
# The frame-model baseline: an HW1P2 model scored with the HW3P2 metric


MIN_RUNS = range(1, 9)  # the min_run values frame_baseline tries on dev


def _frame_classes(model, root, partition, config=None, stats=None, device=None):
    """(each frame's predicted class, utterance offsets, utterance ids) of an HW1P2 model on a partition."""
    from .checkpoint import load_checkpoint
    from .data import AudioDataset
    from .submit import predict

    if isinstance(model, (str, Path)):
        model, config, ckpt = load_checkpoint(model, device or "cpu")
        stats = ckpt.get("stats") if stats is None else stats
    elif hasattr(model, "model") and hasattr(model, "config"):  # a FitResult
        model, config = model.model, model.config if config is None else config
    if config is None:
        raise ValueError("frame_sequences(model, ...) needs the model's config (its context and normalisation): "
                         "pass config=, or a checkpoint path or fit()'s result instead of the bare model")
    if getattr(config, "task", "frames") != "frames":
        raise ValueError(f"the frame baseline takes an HW1P2 (task='frames') model, this one is task={config.task!r}")
    if isinstance(stats, dict):
        stats = (np.asarray(stats["mean"], np.float32), np.asarray(stats["std"], np.float32))
    frames = AudioDataset(root, partition, context=config.context, normalize=config.normalize,
                          boundary=config.boundary, with_labels=False, stats=stats)
    return predict(model, frames, device=device), frames.offsets, list(frames.utterances)


def frame_sequences(model, root=None, partition: str = "dev-clean", config=None, stats=None,
                    min_run: int = 1, device=None) -> tuple[list[str], list[str]]:
    """(one predicted string per utterance of `partition`, its utterance ids) from an HW1P2 frame
    model: each frame's class, runs collapsed, [SIL] kept (HW3P2's transcripts have it at the ends
    and at pauses). `model`: a checkpoint file or run folder, a FitResult, or an nn.Module with
    the `config` it was trained with. min_run: runs shorter than this many frames are dropped first.
    """
    classes, offsets, utterances = _frame_classes(model, root, partition, config, stats, device)
    return frames_to_sequence(classes, offsets, min_run=min_run), utterances


class FrameBaseline(float):
    """A mean distance that also says which min_run gave it (.min_run) and on which partition it was chosen."""

    min_run: int
    chosen_on: str | None


def frame_baseline(model, root=None, partition: str = "dev-clean", config=None, stats=None,
                   min_run: int | None = None, device=None, choose_on: str = "dev-clean",
                   verbose: bool = True) -> FrameBaseline:
    """Mean Levenshtein distance of an HW1P2 frame model on `partition`, read as HW3P2 answers
    (frame_sequences): the number a CTC model should beat. `model` as in frame_sequences.

    min_run=None (the default) picks it on `choose_on` (dev): the value of MIN_RUNS with the
    lowest distance there (frame models flicker; dropping one-frame runs can halve the distance,
    and min_run=1 can score worse than predicting nothing), then scores `partition` with it and
    says which it chose. The result is a float with .min_run."""
    def distances(part, runs):
        classes, offsets, utterances = _frame_classes(model, root, part, config, stats, device)
        truth = UtteranceDataset(root, part, with_labels=True)
        if truth.utterances != utterances:
            raise ValueError(f"{part} in {truth.root} lists other utterances for the sequences than for the "
                             "frames: mfcc/ and the transcript folders must hold the same files")
        true = answers(truth)
        return {m: mean_distance(frames_to_sequence(classes, offsets, min_run=m), true) for m in runs}

    chosen_on = None
    if min_run is None:
        on_dev = distances(choose_on, MIN_RUNS)
        min_run, chosen_on = min(on_dev, key=lambda m: (on_dev[m], m)), choose_on
        if verbose:
            print(f"phonemekit: frame baseline: min_run={min_run} chosen on {choose_on} "
                  f"(distance {on_dev[min_run]:.3f}; min_run=1 gives {on_dev[1]:.3f})")
        value = on_dev[min_run] if partition == choose_on else distances(partition, [min_run])[min_run]
    else:
        value = distances(partition, [min_run])[min_run]
    result = FrameBaseline(value)
    result.min_run, result.chosen_on = min_run, chosen_on
    return result


# --------------------------------------------------------------------------------------------
# Kaggle


def kaggle_submit_ctc(path, competition: str, message: str, n_utterances: int | None = None, sample=None):
    """Validate an HW3P2 CSV (validate_ctc_submission), then `kaggle competitions submit`.

    n_utterances (or the rows of `sample`, the competition's sample file) is the number of test
    utterances the file must have; without either, the row count is not checked.
    """
    from .kaggle import kaggle_submit

    return kaggle_submit(path, competition, message, n_utterances, sample, validate=validate_ctc_submission)


TASKS = {"frames": "HW1P2 (one phoneme class per test frame)", "ctc": "HW3P2 (one phoneme string per test utterance)"}
_FRAME_LABELS = set(CLASSES) | {str(i) for i in range(len(CLASSES))}


def _task_of(df: pd.DataFrame) -> str | None:
    """"frames" or "ctc" by most labels, a label either homework could hold ("S", "AA") counting
    for neither; on a tie by the header (index,label and id,predictions are HW3P2's); else None."""
    if df.shape[1] < 2 or len(df) == 0:
        return None
    frames = ctc = 0
    for label, k in df.iloc[:, -1].value_counts().items():
        frame_like = label in _FRAME_LABELS or label.upper() in CLASSES  # "ah": a miscased HW1P2 label
        ctc_like = sum(c in _ALLOWED for c in label) * 2 > len(label)  # a bad character or two allowed
        frames += k * (frame_like and not ctc_like)
        ctc += k * (ctc_like and not frame_like)
    if frames != ctc:
        return "frames" if frames > ctc else "ctc"
    names = [c.lower() for c in df.columns]
    return "ctc" if names[-2] == "index" or names[-1].startswith("prediction") else None


def submission_task(path, sample=None, n_frames: int | None = None, n_utterances: int | None = None,
                    counts: dict | None = None) -> str:
    """"ctc" for an HW3P2 CSV, "frames" for an HW1P2 one: what the command line assumes without --task.

    Decided by the sample file's labels (when given), else by the row count (when it is exactly
    one of n_frames and n_utterances), else by most labels, else by the header ("frames" when
    nothing tells). A file with a bad character or another separator still goes to its own
    homework's check, which names the character and its row, or the separator. counts: the same
    two numbers as {task name: rows}, as phonemekit.task's count_test gives them.
    """
    if counts:
        n_frames, n_utterances = counts.get("frames", n_frames), counts.get("ctc", n_utterances)
    if sample is not None:
        task = _task_of(read_sample(sample))
        if task is not None:
            return task
    df = read_any_separator(path)
    if n_frames != n_utterances and len(df) in (n_frames, n_utterances):
        return "frames" if len(df) == n_frames else "ctc"
    return _task_of(df) or "frames"


def check_sample(sample, task: str, n_items: int | None = None) -> Path:
    """Refuse a sample file of the other homework, or of another test set (n_items: the test
    frames for task="frames", the test utterances for task="ctc"); returns its path."""
    if task not in TASKS:
        raise ValueError(f"task={task!r}; choose one of {tuple(TASKS)}")
    sample = Path(sample).expanduser()
    df = read_sample(sample, nrows=None)
    found = _task_of(df)
    if found is not None and found != task:
        raise ValueError(f"sample file {sample} is an {TASKS[found]} sample, and this prediction is "
                         f"{TASKS[task]}: pass the sample_submission.csv of the {TASKS[task][:5]} competition, "
                         "or none")
    unit = "test frames" if task == "frames" else "test utterances"
    if n_items is not None and len(df) != n_items:
        raise ValueError(f"sample file {sample} has {len(df):,} rows and the test set {n_items:,} {unit}: pass "
                         "the sample_submission.csv that came with this test set")
    return sample
