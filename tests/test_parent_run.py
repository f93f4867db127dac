"""What a sweep records on its parent run at its end (pipeline/launch/parent_run.py): how many
children ran and finished, and the best finished child by validation accuracy (the first started
on a tie); a sweep with no finished child has no best."""

from mlflow import MlflowClient

from pipeline.launch.parent_run import record_best
from pipeline.model.metric_names import FINAL_VAL_ACC
from pipeline.tracking.sweep_runs import PARENT_TAG


def sweep_with_children(tmp_path, children: list[tuple[str, str, float | None]]) -> tuple[MlflowClient, str]:
    """A parent run and its children: (name, end status, final validation accuracy or None)."""
    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    experiment = client.create_experiment("sweep")
    parent = client.create_run(experiment, run_name="sweep").info.run_id
    for second, (name, status, accuracy) in enumerate(children, start=1):  # started a second apart, in order
        run = client.create_run(experiment, start_time=second * 1000, run_name=name, tags={PARENT_TAG: parent})
        child = run.info.run_id
        if accuracy is not None:
            client.log_metric(child, FINAL_VAL_ACC, accuracy)
        client.set_terminated(child, status)
    return client, parent


def test_the_best_finished_child_is_named_on_the_parent(tmp_path, capsys):
    runs = [("first", "FINISHED", 0.97), ("tie", "FINISHED", 0.98), ("later", "FINISHED", 0.98)]
    client, parent = sweep_with_children(tmp_path, [*runs, ("cut", "KILLED", 0.99), ("failed", "FAILED", None)])
    best = record_best(client, parent)
    assert best.info.run_name == "tie"  # a killed run's higher accuracy does not count; on a tie, the first
    tags = client.get_run(parent).data.tags
    assert (tags["sweep.children"], tags["sweep.children_finished"]) == ("5", "3")
    assert (tags["best_run_id"], tags["best_run_name"]) == (best.info.run_id, "tie")
    assert client.get_run(parent).data.metrics[f"best_{FINAL_VAL_ACC}"] == 0.98
    assert capsys.readouterr().out == (
        f"sweep: parent run {parent}: best tie (validation accuracy 0.9800) of 3 finished runs (2 more cut short "
        "or failed)\n"
    )


def test_a_sweep_without_a_finished_child_has_no_best(tmp_path, capsys):
    client, parent = sweep_with_children(tmp_path, [("cut", "KILLED", 0.99)])
    assert record_best(client, parent) is None
    tags = client.get_run(parent).data.tags
    assert (tags["sweep.children"], tags["sweep.children_finished"], "best_run_id" in tags) == ("1", "0", False)
    assert capsys.readouterr().out == ""
