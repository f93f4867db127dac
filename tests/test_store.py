from dataclasses import replace

from pipeline.tracking.store import default_uri, experiment_id, open_client, source_tags, tracking_uri


def test_a_sqlite_store_keeps_its_artifacts_beside_the_database_whatever_the_working_directory(tmp_path, monkeypatch):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # MLflow's default would be ./mlruns here
    client = open_client(f"sqlite:///{tmp_path}/store/mlflow.db")
    experiment = experiment_id(client, "e")
    assert experiment_id(client, "e") == experiment
    run_id = client.create_run(experiment).info.run_id
    (tmp_path / "note.txt").write_text("hello")
    client.log_artifact(run_id, str(tmp_path / "note.txt"))
    assert (tmp_path / "store/mlruns" / run_id / "artifacts/note.txt").read_text() == "hello"
    assert not (elsewhere / "mlruns").exists()


def test_the_default_store_is_the_projects_from_any_subdirectory(tmp_path, monkeypatch):
    (tmp_path / "project/plots/deeper").mkdir(parents=True)
    (tmp_path / "project/dvc.yaml").write_text("stages: {}\n")
    monkeypatch.chdir(tmp_path / "project/plots/deeper")
    assert default_uri() == f"sqlite:///{tmp_path}/project/mlflow.db"


def test_a_dvc_stage_uses_the_store_of_the_repository_dvc_names(tmp_path, monkeypatch):
    """In a queued or temporary experiment's workspace DVC points $DVC_ROOT at the repository the
    experiment came from: its store, not one deleted with the workspace."""
    workspace = tmp_path / "project/.dvc/tmp/exps/tmp1234"
    workspace.mkdir(parents=True)
    (workspace / "dvc.yaml").write_text("stages: {}\n")
    monkeypatch.chdir(workspace)
    monkeypatch.setenv("DVC_ROOT", str(tmp_path / "project"))
    assert default_uri() == f"sqlite:///{tmp_path}/project/mlflow.db"


def test_the_configured_uri_and_the_environment_still_win(cfg, tmp_path, monkeypatch):
    monkeypatch.setenv("DVC_ROOT", str(tmp_path / "repo"))
    assert tracking_uri(cfg) == f"sqlite:///{tmp_path}/mlflow.db"  # tracking.uri (conftest's make_config)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5000")
    assert tracking_uri(replace(cfg, tracking=replace(cfg.tracking, uri=None))) == "http://127.0.0.1:5000"


def test_a_run_started_by_a_dvc_experiment_is_tagged_with_it(monkeypatch):
    assert not {"dvc.exp_name", "dvc.exp_baseline_rev"} & set(source_tags())
    monkeypatch.setenv("DVC_EXP_NAME", "lr-half")
    monkeypatch.setenv("DVC_EXP_BASELINE_REV", "0123abc")
    tags = source_tags()
    assert tags["dvc.exp_name"] == "lr-half" and tags["dvc.exp_baseline_rev"] == "0123abc"
