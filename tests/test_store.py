from pipeline.tracking.store import experiment_id, open_client


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
