import numpy as np
import pytest
import torch
from torch import nn

from phonemekit.model import build_mlp
from phonemekit.phonemes import CLASSES, NUM_CLASSES
from phonemekit.submit import predict, score_submission, validate_submission, write_submission


class WindowSet:
    """The dataset protocol predict relies on: len() frames, ds[index_tensor] -> batch."""

    def __init__(self, x, y=None):
        self.x, self.y = x, y

    def __len__(self):
        return len(self.x)

    def __getitem__(self, idx):
        return self.x[idx] if self.y is None else (self.x[idx], self.y[idx])


class Pick(nn.Module):
    """Logits that single out the class stored in the window: the expected prediction is known."""

    def __init__(self):
        super().__init__()
        self.bn = nn.BatchNorm1d(1)  # to see that predict runs in eval mode

    def forward(self, x):
        self.bn(x[:, :1, 0])
        return nn.functional.one_hot(x[:, 0, 0].long(), NUM_CLASSES).float()


# --------------------------------------------------------------------------------------------
# predict


@pytest.mark.parametrize("labelled", [False, True])
def test_predict_returns_one_class_per_frame_in_dataset_order(labelled):
    classes = torch.randint(0, NUM_CLASSES, (103,))
    x = classes.float()[:, None, None].expand(103, 3, 2).clone()
    ds = WindowSet(x, classes if labelled else None)
    model = Pick().train()
    ids = predict(model, ds, batch_size=10)  # 103 frames: the last batch is partial
    assert ids.dtype == torch.int64 and torch.equal(ids, classes)
    assert model.training  # put back in the mode it was in
    assert model.bn.num_batches_tracked == 0  # ran in eval mode


def test_predict_can_return_probabilities_for_ensembling():
    torch.manual_seed(0)
    model = build_mlp(3 * 2, hidden=[16])
    ds = WindowSet(torch.randn(50, 3, 2))
    probs = predict(model, ds, batch_size=16, return_probs=True)
    assert probs.shape == (50, NUM_CLASSES)
    assert torch.allclose(probs.sum(1), torch.ones(50))
    assert torch.equal(probs.argmax(1), predict(model, ds))


def test_predict_is_deterministic_with_dropout_and_batchnorm():
    model = build_mlp(3 * 2, hidden=[32, 32], dropout=0.5).train()
    ds = WindowSet(torch.randn(40, 3, 2))
    assert torch.equal(predict(model, ds, batch_size=7), predict(model, ds, batch_size=40))


def _write_partition(root, partition, lengths, f=4, labels=True, seed=0):
    rng = np.random.default_rng(seed)
    (root / partition / "mfcc").mkdir(parents=True)
    if labels:
        (root / partition / "transcript").mkdir(parents=True)
    out = []
    for u, t in enumerate(lengths):
        name = f"19-198-{u:04d}.npy"
        np.save(root / partition / "mfcc" / name, rng.normal(size=(t, f)).astype(np.float32))
        y = rng.integers(0, NUM_CLASSES, t)
        out.append(y)
        if labels:
            np.save(root / partition / "transcript" / name, np.array(["[SOS]"] + [CLASSES[i] for i in y] + ["[EOS]"]))
    return np.concatenate(out)


def test_predict_on_a_real_test_partition_and_its_submission_validates(tmp_path):
    from phonemekit.data import AudioDataset

    _write_partition(tmp_path, "test-clean", [7, 5, 9], labels=False)
    ds = AudioDataset(tmp_path, "test-clean", context=2)
    model = build_mlp(5 * 4, hidden=[16])
    ids = predict(model, ds, batch_size=4)
    assert ids.shape == (21,)
    # each frame predicted from its own window: the same as running the model on ds[i]
    model.eval()
    with torch.no_grad():
        assert torch.equal(ids, torch.stack([model(ds[i][None]).argmax(1)[0] for i in range(len(ds))]))
    path = write_submission(ids, tmp_path / "out" / "submission.csv")
    assert validate_submission(path, len(ds))


def test_predict_ignores_the_labels_of_a_labelled_audio_dataset(tmp_path):
    from phonemekit.data import AudioDataset

    y = _write_partition(tmp_path, "dev-clean", [6, 8])
    ds = AudioDataset(tmp_path, "dev-clean", context=1)
    model = build_mlp(3 * 4, hidden=[8])
    ids = predict(model, ds, batch_size=5)
    assert ids.shape == (14,)
    write_submission(ids, tmp_path / "s.csv")
    assert score_submission(tmp_path / "s.csv", ds.labels) == pytest.approx((ids.numpy() == y).mean())


# --------------------------------------------------------------------------------------------
# write, validate, score


def test_submission_round_trips_ids_and_phoneme_labels(tmp_path):
    ids = torch.tensor([0, 3, 39, 17, 3])
    path = write_submission(ids, tmp_path / "submission.csv")
    lines = path.read_text().splitlines()
    assert lines == ["id,label", "0,[SIL]", "1,AH", "2,ZH", "3,IH", "4,AH"]
    assert validate_submission(path, 5) is True
    assert score_submission(path, ids) == 1.0
    assert score_submission(path, [CLASSES[i] for i in ids]) == 1.0
    assert score_submission(path, torch.tensor([0, 3, 39, 0, 0], dtype=torch.uint8)) == pytest.approx(0.6)


def test_integer_labels_and_other_headers_for_other_semesters(tmp_path):
    path = write_submission(np.array([5, 0, 12]), tmp_path / "s.csv", header=("Id", "Label"), label_format="int")
    assert path.read_text().splitlines() == ["Id,Label", "0,5", "1,0", "2,12"]
    assert validate_submission(path, 3, header=("Id", "Label"))
    assert score_submission(path, [5, 0, 0]) == pytest.approx(2 / 3)


def test_write_rejects_probabilities_and_out_of_range_classes(tmp_path):
    with pytest.raises(ValueError, match="argmax"):
        write_submission(torch.rand(4, NUM_CLASSES), tmp_path / "s.csv")
    with pytest.raises(ValueError, match="class 40"):
        write_submission([1, 40], tmp_path / "s.csv")
    with pytest.raises(ValueError, match="label_format"):
        write_submission([1], tmp_path / "s.csv", label_format="phoneme")


def _csv(tmp_path, text, name="s.csv"):
    p = tmp_path / name
    p.write_text(text)
    return p


@pytest.mark.parametrize("text,n,reason", [
    ("Id,Label\n0,AA\n1,AE\n", 2, "header 'Id,Label'"),
    ("ID,label\n0,AA\n1,AE\n", 2, r"header 'ID,label', .*case included"),
    (",id,label\n0,0,AA\n1,1,AE\n", 2, "extra index column"),
    ("id,label\n0,AA\n1,AE\n", 3, "has 2 rows, expected 3"),
    ("id,label\n0,AA\n1,AE\n2,B\n", 2, "has 3 rows, expected 2"),
    ("id,label\n0,AA\n2,AE\n", 2, r"row 1 has id 2, outside 0\.\.1"),
    ("id,label\n1,AA\n1,AE\n", 2, "id 1 appears 2 times .rows 0 and 1. and id 0 is missing"),
    ("id,label\n0,AA\nx,AE\n", 2, "row 1 has id 'x', not an integer"),
    ("id,label\n0,AA\n-1,AE\n", 2, "row 1 has id '-1', not an integer"),
    ("id,label\n0,AA\n1.0,AE\n", 2, "row 1 has id '1.0', not an integer"),
    ("id,label\n0,AA\n1,[SOS]\n", 2, r"row 1 has label '\[SOS\]'"),
    ("id,label\n0,AA\n1,ah\n", 2, "row 1 has label 'ah'"),
    ("id,label\n0,AA\n1,40\n", 2, "row 1 has label '40'"),
    ("id,label\n0,AA\n1,\n", 2, "row 1 .* empty or NaN label"),
    ("id,label\n0,AA\n1,NaN\n", 2, "row 1 .* empty or NaN label"),
    ("id,label\n0,AA\n,AE\n", 2, "row 1 .* empty or NaN id"),
    ("id,label\n0,AA\n1,3\n", 2, "mixes phoneme strings and class indices"),
    ("", 2, r"s\.csv is empty \(0 bytes\): write it with write_submission"),
    ("\n\n", 2, r"s\.csv has no header line"),
])
def test_each_malformed_submission_is_rejected_with_its_reason(tmp_path, text, n, reason):
    with pytest.raises(ValueError, match=reason):
        validate_submission(_csv(tmp_path, text), n)


def test_ids_out_of_row_order_are_valid_and_scored_by_id_as_kaggle_does(tmp_path, capsys):
    # Kaggle joins the file to its answers on the id column: the row order does not matter
    path = _csv(tmp_path, "id,label\n2,ZH\n0,[SIL]\n1,AH\n")
    assert validate_submission(path, 3)
    assert "not in row order (row 0 has id 2)" in capsys.readouterr().out
    assert score_submission(path, [0, 3, 39]) == 1.0
    assert score_submission(path, ["[SIL]", "AH", "AA"]) == pytest.approx(2 / 3)
    # the same predictions in id order score the same
    assert score_submission(write_submission([0, 3, 39], tmp_path / "ordered.csv"), [0, 3, 39]) == 1.0


@pytest.mark.parametrize("content,reason", [
    ("id,label\n0,AÄ\n".encode("latin-1"), r"bad\.csv is not UTF-8 text \(byte 0xc4 on line 2\): save it as UTF-8"),
    ("id,label\n0,AA\n".encode("utf-16"), r"bad\.csv is not UTF-8 text \(it is UTF-16\): save it as UTF-8"),
])
def test_a_csv_that_is_not_utf8_gets_one_line_naming_the_file_and_the_fix(tmp_path, content, reason):
    (tmp_path / "bad.csv").write_bytes(content)
    with pytest.raises(ValueError, match=reason) as e:
        validate_submission(tmp_path / "bad.csv", 1)
    assert "\n" not in str(e.value)


def test_a_folder_passed_as_the_csv_says_to_pass_the_file_inside_it(tmp_path):
    run = tmp_path / "cpu-demo"
    run.mkdir()
    with pytest.raises(ValueError, match=r"cpu-demo is a folder, not a CSV file: pass the file inside it, "
                                         r"e\.g\. .*cpu-demo/submission\.csv"):
        validate_submission(run, 3)
    with pytest.raises(ValueError, match="is a folder"):
        score_submission(run, [1, 2, 3])


def test_a_utf8_file_with_a_byte_order_mark_is_read_as_utf8(tmp_path):
    (tmp_path / "bom.csv").write_bytes(b"\xef\xbb\xbfid,label\n0,AA\n")  # Excel's "CSV UTF-8"
    assert validate_submission(tmp_path / "bom.csv", 1)


def test_missing_submission_file_names_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.csv"):
        validate_submission(tmp_path / "nope.csv", 3)


def test_header_is_checked_against_the_sample_file(tmp_path):
    sample = _csv(tmp_path, "Id,Label\n0,0\n1,0\n", "sample_submission.csv")
    ours = write_submission([1, 2], tmp_path / "s.csv")
    with pytest.raises(ValueError, match="header of sample_submission.csv is 'Id,Label'"):
        validate_submission(ours, 2, sample=sample)
    ints = write_submission([1, 2], tmp_path / "i.csv", header=("Id", "Label"), label_format="int")
    assert validate_submission(ints, 2, sample=sample)
    # exactly the sample's header, case included
    lower = _csv(tmp_path, "id,label\n0,0\n1,0\n", "sample_submission.csv")
    with pytest.raises(ValueError, match="header 'Id,Label', the header of sample_submission.csv is 'id,label'"):
        validate_submission(ints, 2, sample=lower)


def test_an_unreadable_sample_file_is_named_as_the_sample(tmp_path):
    ours = write_submission([1, 2], tmp_path / "s.csv")
    with pytest.raises(FileNotFoundError, match="sample file .*sample_submission.csv does not exist"):
        validate_submission(ours, 2, sample=tmp_path / "sample_submission.csv")
    with pytest.raises(ValueError, match="sample file .*sample_submission.csv is empty"):
        validate_submission(ours, 2, sample=_csv(tmp_path, "", "sample_submission.csv"))


def test_label_kind_must_match_the_sample_file(tmp_path):
    sample = _csv(tmp_path, "id,label\n0,[SIL]\n1,[SIL]\n", "sample_submission.csv")
    ints = write_submission([1, 2], tmp_path / "s.csv", label_format="int")
    with pytest.raises(ValueError, match="int labels but sample_submission.csv has string labels"):
        validate_submission(ints, 2, sample=sample)
    assert validate_submission(write_submission([1, 2], tmp_path / "t.csv"), 2, sample=sample)


def test_score_rejects_a_file_of_the_wrong_length(tmp_path):
    path = write_submission([1, 2, 3], tmp_path / "s.csv")
    with pytest.raises(ValueError, match="has 3 rows, expected 4"):
        score_submission(path, [1, 2, 3, 4])


def test_score_names_an_extra_index_column(tmp_path):
    with pytest.raises(ValueError, match="extra index column"):
        score_submission(_csv(tmp_path, ",Id,Label\n0,0,AA\n1,1,AE\n"), [1, 2])
