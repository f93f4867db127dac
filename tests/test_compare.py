"""pipeline.compare on a store holding sweeps in two experiments and runs of DVC experiments, written
with the MLflow client (no training)."""

import time

import pytest
from mlflow import MlflowClient

from pipeline.compare import DVC_EXP_TAG, main
from pipeline.config.errors import PipelineError
from pipeline.tracking.sweep_runs import PARENT_TAG


def record_run(client, experiment_id, name, params, acc, tags=None):
    run = client.create_run(experiment_id, run_name=name, tags=tags or {})
    for key, value in params.items():
        client.log_param(run.info.run_id, key, value)
    client.log_metric(run.info.run_id, "final_val_acc", acc)
    client.set_terminated(run.info.run_id)
    time.sleep(0.002)  # start times differ: ties are ordered by them
    return run.info.run_id


def record_sweep(client, experiment_id, name, results):
    """A parent run like pipeline.launch.sweep's, with one finished child per (lr, bias) -> accuracy."""
    parent = client.create_run(
        experiment_id,
        run_name=name,
        tags={
            "sweep.dir": f"outputs/sweeps/{name}",
            "sweep.swept_keys": "optim.lr,model.bias",
            "sweep.overrides": "optim.lr=0.1,1.0 model.bias=true,false",
        },
    )
    ids = [
        record_run(
            client,
            experiment_id,
            f"optim.lr={lr},model.bias={bias}",
            {"optim.lr": lr, "model.bias": bias, "fit.epochs": 40, "seed": 42},
            acc,
            {PARENT_TAG: parent.info.run_id},
        )
        for (lr, bias), acc in results.items()
    ]
    client.set_terminated(parent.info.run_id)
    return parent.info.run_id, ids


@pytest.fixture
def store(tmp_path):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    client = MlflowClient(uri)
    default = client.create_experiment("threes-sevens")
    learner = client.create_experiment("learner")
    old, _ = record_sweep(client, default, "old", {(0.5, True): 0.9})
    new, ids = record_sweep(
        client, learner, "new", {(0.1, True): 0.95, (1.0, True): 0.98, (0.1, False): 0.97, (1.0, False): 0.98}
    )
    for name, lr, acc in (("lr-half", 0.5, 0.97), ("no-bias", 1.0, 0.96), ("lr-half", 0.25, 0.5)):
        record_run(client, default, name, {"optim.lr": lr, "fit.epochs": 40}, acc, {DVC_EXP_TAG: name})
    return uri, old, new, ids


def test_compare_prints_the_swept_keys_once_in_the_sweeps_order_best_first_ties_by_start(store, tmp_path, capsys):
    uri, _, new, ids = store
    for _ in range(2):  # the same table on every call
        main(["new", "--tracking-uri", uri])
        out = capsys.readouterr().out.splitlines()
        assert out[0].startswith(f"sweep new in experiment 'learner' (parent run {new}, FINISHED): 4 runs")
        assert out[1].split() == ["run_id", "status", "optim.lr", "model.bias", "final_val_acc"]
        assert [row.split() for row in out[2:6]] == [
            [ids[1][:8], "FINISHED", "1.0", "True", "0.9800"],
            [ids[3][:8], "FINISHED", "1.0", "False", "0.9800"],
            [ids[2][:8], "FINISHED", "0.1", "False", "0.9700"],
            [ids[0][:8], "FINISHED", "0.1", "True", "0.9500"],
        ]
    assert not list(tmp_path.rglob("*.png"))  # no PNG unless asked


def test_compare_finds_sweeps_by_id_and_latest_in_any_experiment_and_writes_a_png_when_asked(store, tmp_path, capsys):
    uri, old, new, _ = store
    main([old, "--tracking-uri", uri, "--png", str(tmp_path / "old.png")])
    out = capsys.readouterr().out
    assert out.startswith("sweep old in experiment 'threes-sevens' (") and f"plot: {tmp_path}/old.png" in out
    assert (tmp_path / "old.png").read_bytes()[:4] == b"\x89PNG"
    main(["latest", "--tracking-uri", uri])
    assert capsys.readouterr().out.startswith("sweep new in experiment 'learner' (")


def test_compare_unknown_sweep_is_one_line_naming_the_experiments(store):
    uri, _, _, ids = store
    with pytest.raises(
        PipelineError, match="sweep 'nope': no such sweep .* \\('Default', 'learner', 'threes-sevens'\\)"
    ):
        main(["nope", "--tracking-uri", uri])
    with pytest.raises(PipelineError, match=f"run {ids[0]} in experiment 'learner' is not a sweep's parent run"):
        main([ids[0], "--tracking-uri", uri])


def test_compare_dvc_experiments_latest_run_of_each(store, capsys):
    uri, _, _, _ = store
    main(["--dvc-exps", "--tracking-uri", uri])
    out = capsys.readouterr().out.splitlines()
    assert out[1].split() == [DVC_EXP_TAG, "run_id", "status", "optim.lr", "final_val_acc"]
    assert [(row.split()[0], row.split()[3]) for row in out[2:]] == [("no-bias", "1.0"), ("lr-half", "0.25")]
    main(["--dvc-exps", "no-bias", "--tracking-uri", uri])
    assert len(capsys.readouterr().out.splitlines()) == 3
    with pytest.raises(PipelineError, match="DVC experiment\\(s\\) gone: no run tagged dvc.exp_name"):
        main(["--dvc-exps", "gone", "--tracking-uri", uri])


def test_compare_needs_a_sweep_or_dvc_experiments(capsys):
    with pytest.raises(SystemExit) as exited:
        main([])
    assert exited.value.code == 1
    assert capsys.readouterr().err.startswith("error: expected a sweep")
