from pipeline.config.project import PROJECT_DIR_ENV, in_project, project_dir


def test_the_project_is_the_nearest_directory_holding_dvc_yaml(tmp_path, monkeypatch):
    (tmp_path / "project/plots/deeper").mkdir(parents=True)
    (tmp_path / "project/dvc.yaml").write_text("stages: {}\n")
    monkeypatch.chdir(tmp_path / "project/plots/deeper")
    assert project_dir() == tmp_path / "project"
    assert in_project("data/normalized") == f"{tmp_path}/project/data/normalized"
    assert in_project("/elsewhere/data") == "/elsewhere/data"


def test_outside_any_project_it_is_the_working_directory(tmp_path):
    assert project_dir() == tmp_path  # conftest: the cwd is tmp_path, with no dvc.yaml above it


def test_the_directory_a_hydra_app_published_wins(tmp_path, monkeypatch):
    """A sweep's jobs in other processes resolve as the sweep did, whatever their working directory."""
    monkeypatch.setenv(PROJECT_DIR_ENV, str(tmp_path / "published"))
    assert project_dir() == tmp_path / "published"
