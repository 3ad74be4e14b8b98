"""Run folders for cron: refuse a finished or foreign folder, skip when nothing changed, resume on request."""

import pytest

from meta_layer_cli.jobs.run_folder import RUN_STATE, RunFolder
from meta_layer_cli.runtime.errors import BusyError, ChangedInputsError, InputDataError, UpToDate


def finished(out, fingerprint):
    with RunFolder(out, fingerprint, "canonical") as run:
        (out / "checkpoints").mkdir()
        run.finish()


def test_finished_run_same_inputs(tmp_path):
    finished(tmp_path, {"config": "a"})
    with pytest.raises(InputDataError, match="holds a run finished .* --overwrite .* --if-changed"):
        RunFolder(tmp_path, {"config": "a"}, "canonical").__enter__()
    with pytest.raises(UpToDate, match="unchanged since the run finished"):
        RunFolder(tmp_path, {"config": "a"}, "canonical", if_changed=True).__enter__()
    assert (tmp_path / "checkpoints").is_dir()  # nothing was removed


def test_finished_run_changed_inputs(tmp_path):
    finished(tmp_path, {"config": "a", "genes": "x"})
    with pytest.raises(ChangedInputsError, match="genes: x -> y"):
        RunFolder(tmp_path, {"config": "a", "genes": "y"}, "canonical").__enter__()
    with RunFolder(tmp_path, {"config": "a", "genes": "y"}, "canonical", if_changed=True) as run:
        assert not (tmp_path / "checkpoints").exists() and not run.resuming  # retrains from scratch


def test_interrupted_run_needs_resume(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        with RunFolder(tmp_path, {"config": "a"}, "canonical"):
            (tmp_path / "checkpoints").mkdir()
            raise KeyboardInterrupt
    with pytest.raises(InputDataError, match="interrupted run .* --resume"):
        RunFolder(tmp_path, {"config": "a"}, "canonical").__enter__()
    with RunFolder(tmp_path, {"config": "a"}, "canonical", resume=True) as run:
        assert run.resuming and (tmp_path / "checkpoints").is_dir()
    with pytest.raises(ChangedInputsError, match="interrupted run made from other inputs"):
        RunFolder(tmp_path, {"config": "b"}, "canonical", resume=True).__enter__()


def test_overlapping_runs_and_foreign_folders(tmp_path):
    with RunFolder(tmp_path / "r", {"config": "a"}, "canonical"):
        with pytest.raises(BusyError, match="is busy"):
            RunFolder(tmp_path / "r", {"config": "a"}, "canonical", overwrite=True).__enter__()
    foreign = tmp_path / "f"
    foreign.mkdir()
    (foreign / "thesis.docx").write_text("mine")
    with pytest.raises(InputDataError, match="not a metalayer run folder"):
        RunFolder(foreign, {"config": "a"}, "canonical").__enter__()
    assert (foreign / "thesis.docx").read_text() == "mine" and not (foreign / RUN_STATE).exists()
    with pytest.raises(InputDataError, match="holds a canonical run, not delta"):
        finished(tmp_path / "k", {"config": "a"})
        RunFolder(tmp_path / "k", {"config": "a"}, "delta").__enter__()


def test_train_log_has_one_line_per_epoch_and_starts_afresh(tmp_path, monkeypatch):
    """Progress's periodic lines (15-20 per epoch) stay out of train.log, which holds the run's events; a new run
    does not inherit the lines of an earlier failed one."""
    import logging

    from meta_layer_cli.jobs.run_folder import RUN_LOG
    from meta_layer_cli.runtime.progress import Progress, settings

    monkeypatch.setattr(settings, "interval", 0.0)  # a progress line at every step

    def run(fingerprint, epochs, **flags):
        with RunFolder(tmp_path, fingerprint, "canonical", **flags) as folder:
            logging.getLogger("meta_layer_cli.jobs").info(f"training run {fingerprint['config']}")
            for epoch in range(epochs):
                with Progress(f"epoch {epoch + 1}/{epochs}", total=5, unit="steps") as bar:
                    for _ in range(5):
                        bar.update(1, loss="0.1")
                    bar.log("loss 0.1, validation PR-AUC 0.9")
            folder.finish()

    with pytest.raises(RuntimeError):
        with RunFolder(tmp_path, {"config": "failed"}, "canonical"):
            logging.getLogger("meta_layer_cli.jobs").error("the failed run's last words")
            raise RuntimeError
    run({"config": "a"}, 3, overwrite=True)
    lines = (tmp_path / RUN_LOG).read_text().splitlines()
    assert [line.split(" INFO ")[1] for line in lines] == [
        "training run a",
        *(f"epoch {e}/3: loss 0.1, validation PR-AUC 0.9" for e in (1, 2, 3)),
    ]


def test_a_folder_policy_opens_the_run_folder_it_describes(tmp_path):
    """The jobs' FolderPolicy (--resume/--overwrite/--if-changed) decides as RunFolder does with the same flags;
    the library's default retrains a finished run, the command line's (overwrite=False) refuses it."""
    from meta_layer_cli.jobs.run_folder import FolderPolicy

    finished(tmp_path, {"config": "a"})
    with pytest.raises(InputDataError, match="holds a run finished"):
        FolderPolicy(overwrite=False).open(tmp_path, {"config": "a"}, "canonical").__enter__()
    with pytest.raises(UpToDate):
        FolderPolicy(overwrite=False, if_changed=True).open(tmp_path, {"config": "a"}, "canonical").__enter__()
    with FolderPolicy().open(tmp_path, {"config": "a"}, "canonical") as run:
        assert not run.resuming and not (tmp_path / "checkpoints").exists()  # trained again from scratch


def test_a_run_folder_of_a_newer_format_is_refused_in_one_line(tmp_path):
    import json

    finished(tmp_path, {"config": "a"})
    state = json.loads((tmp_path / RUN_STATE).read_text())
    assert (state["format"], state["format_version"]) == ("metalayer-run", 1)
    unversioned = {k: v for k, v in state.items() if k not in ("format", "format_version")}
    (tmp_path / RUN_STATE).write_text(json.dumps(unversioned))  # written before versioning: read as version 1
    with pytest.raises(UpToDate):
        RunFolder(tmp_path, {"config": "a"}, "canonical", if_changed=True).__enter__()
    (tmp_path / RUN_STATE).write_text(json.dumps({**state, "format_version": 2}))
    with pytest.raises(InputDataError, match="metalayer-run version 2, this metalayer reads metalayer-run up to 1"):
        RunFolder(tmp_path, {"config": "a"}, "canonical", if_changed=True).__enter__()
