"""Loading from a run's folder takes its best checkpoint, and last.pt only when there is no best."""

from phonemekit.checkpoint import resolve


def test_a_run_folder_resolves_to_best_pt_and_to_last_pt_only_without_one(tmp_path):
    (tmp_path / "last.pt").write_bytes(b"last")
    assert resolve(tmp_path) == tmp_path / "last.pt"
    (tmp_path / "best.pt").write_bytes(b"best")
    assert resolve(tmp_path) == tmp_path / "best.pt"
    assert resolve(tmp_path / "last.pt") == tmp_path / "last.pt"  # a file is taken as given
