"""pipeline.compare on a store holding two sweeps written with the MLflow client (no training)."""

import time

import pytest
from mlflow import MlflowClient

from pipeline.compare import main
from pipeline.errors import PipelineError
from pipeline.tracking.sweep import PARENT_TAG


def record_sweep(client, experiment_id, name, results):
    """A parent run like pipeline.sweep's, with one finished child per (lr, bias) -> accuracy."""
    parent = client.create_run(experiment_id, run_name=name,
                               tags={"sweep.dir": f"outputs/sweeps/{name}", "sweep.swept_keys": "optim.lr,model.bias",
                                     "sweep.overrides": "optim.lr=0.1,1.0 model.bias=true,false"})
    for (lr, bias), acc in results.items():
        child = client.create_run(experiment_id, run_name=f"optim.lr={lr},model.bias={bias}",
                                  tags={PARENT_TAG: parent.info.run_id})
        for key, value in {"optim.lr": lr, "model.bias": bias, "optim.epochs": 40, "seed": 42}.items():
            client.log_param(child.info.run_id, key, value)
        client.log_metric(child.info.run_id, "final_val_acc", acc)
        client.set_terminated(child.info.run_id)
    client.set_terminated(parent.info.run_id)
    return parent.info.run_id


@pytest.fixture
def store(tmp_path):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    client = MlflowClient(uri)
    experiment_id = client.create_experiment("threes-sevens")
    old = record_sweep(client, experiment_id, "old", {(0.5, True): 0.9})
    time.sleep(0.01)  # `latest` orders by start time
    new = record_sweep(client, experiment_id, "new", {(0.1, True): 0.95, (1.0, True): 0.985, (0.1, False): 0.97,
                                                      (1.0, False): 0.98})
    return uri, old, new


def test_compare_prints_the_runs_best_first_and_writes_a_png(store, tmp_path, capsys):
    uri, _, new = store
    main(["new", "--tracking-uri", uri, "--png", str(tmp_path / "new.png")])
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(f"sweep new (parent run {new}, FINISHED): 4 runs")
    assert out[1].split() == ["run_id", "status", "optim.lr", "model.bias", "final_val_acc"]
    assert [row.split()[2:] for row in out[2:6]] == [["1.0", "True", "0.9850"], ["1.0", "False", "0.9800"],
                                                     ["0.1", "False", "0.9700"], ["0.1", "True", "0.9500"]]
    assert (tmp_path / "new.png").read_bytes()[:4] == b"\x89PNG"


def test_compare_finds_sweeps_by_id_and_latest(store, tmp_path, capsys):
    uri, old, new = store
    main([old, "--tracking-uri", uri, "--png", str(tmp_path / "old.png")])
    assert capsys.readouterr().out.startswith("sweep old (")
    main(["latest", "--tracking-uri", uri])  # default PNG: outputs/compare/<name>.png
    assert capsys.readouterr().out.startswith("sweep new (")
    assert (tmp_path / "outputs/compare/new.png").is_file()


def test_compare_unknown_sweep_is_one_clear_error(store):
    uri, _, _ = store
    with pytest.raises(PipelineError, match="sweep 'nope': no such sweep"):
        main(["nope", "--tracking-uri", uri])
