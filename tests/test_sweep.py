"""Hydra multirun sweeps recorded in MLflow: one parent run per sweep, one child per job, parallel-safe;
read back by pipeline.compare and shown by the MLflow UI in headless Chromium."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow import MlflowClient
from omegaconf import OmegaConf

from pipeline.launch.sweep import MlflowSweep
from pipeline.tracking import lifecycle
from pipeline.tracking.server import TrackingServer
from pipeline.tracking.sweep_runs import PARENT_TAG, SWEEP_FILE
from tests import system_deps
from tests.conftest import REPO, make_config, write_idx_dir

pytestmark = pytest.mark.slow
EPOCHS = 2
# Not mlflow.db: MLflow's own default store is ./mlflow.db of the sweep's directory (the tests' cwd); a
# sweep must use the store its tracking.uri names, not that one (issue 27).
STORE = "sweeps.db"
GRID = {"optim.lr": ["0.25", "0.5", "1.0"], "model.bias": ["true", "false"]}  # 6 jobs
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def synthetic_normalized(root: Path) -> Path:
    """fetch, filter and normalize on the small synthetic IDX data; returns the normalized directory."""
    from pipeline.fetch import fetch
    from pipeline.filter import filter_digits
    from pipeline.normalize import normalize

    write_idx_dir(root / "idx")
    cfg = make_config(root)
    fetch(cfg)
    filter_digits(cfg)
    normalize(cfg)
    return Path(cfg.paths.normalized)


def multirun(cwd: Path, *overrides: str) -> str:
    """`python -m pipeline.train -m ...` as a user runs it, with this repository's code."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env["PYTHONPATH"] = str(REPO)
    done = subprocess.run(
        [sys.executable, "-m", "pipeline.train", "-m", *overrides],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    out = done.stdout + done.stderr
    assert done.returncode == 0, out[-5000:]
    return out


def common_overrides(root: Path, normalized: Path, sweep_dir: str) -> list[str]:
    return [
        f"paths.normalized={normalized}",
        f"tracking.uri=sqlite:///{root}/{STORE}",
        f"fit.epochs={EPOCHS}",
        "trainer.accelerator=cpu",
        f"hydra.sweep.dir={root}/{sweep_dir}",
    ]


@pytest.fixture(scope="module")
def grid_sweep(tmp_path_factory):
    """A 6-job grid sweep run by the joblib launcher, 6 jobs at once, writing a fresh SQLite store."""
    root = tmp_path_factory.mktemp("sweep")
    normalized = synthetic_normalized(root)
    grid = [f"{key}={','.join(values)}" for key, values in GRID.items()]
    out = multirun(
        root, *grid, "hydra/launcher=joblib", "hydra.launcher.n_jobs=6", *common_overrides(root, normalized, "grid")
    )
    return root, out


def test_parallel_sweep_records_every_job_as_a_complete_child_of_one_parent(grid_sweep):
    root, out = grid_sweep
    assert "database is locked" not in out
    assert "LeafSpec" not in out and "litlogger" not in out  # quiet_lightning reaches joblib's workers
    published = json.loads((root / "grid" / SWEEP_FILE).read_text())
    assert published["tracking_uri"] == f"sqlite:///{root}/{STORE}"  # the jobs wrote the file directly

    client = MlflowClient(f"sqlite:///{root}/{STORE}")
    runs = client.search_runs([published["experiment_id"]])
    parents = [run for run in runs if PARENT_TAG not in run.data.tags]
    assert [parent.info.run_id for parent in parents] == [published["parent_run_id"]]
    [parent] = parents
    children = [run for run in runs if run.data.tags.get(PARENT_TAG) == parent.info.run_id]
    assert len(children) == 6 == len(runs) - 1

    expected_names = {
        f"optim.lr={lr},model.bias={bias}".lower() for lr in GRID["optim.lr"] for bias in GRID["model.bias"]
    }
    assert {child.info.run_name.lower() for child in children} == expected_names
    for child in children:
        assert child.info.status == "FINISHED"
        assert {"final_val_acc", "final_val_acc_first", "final_val_acc_second"} <= set(child.data.metrics)
        has_bias = child.data.params["model.bias"] == "True"
        for metric in ("train_loss", "val_loss", "val_acc") + (("bias",) if has_bias else ()):
            assert len(client.get_metric_history(child.info.run_id, metric)) == EPOCHS, metric
        artifacts = {a.path for a in client.list_artifacts(child.info.run_id)}
        assert {"history.csv", "weights.npy", "weights.png"} <= artifacts
        overrides = dict(item.split("=") for item in child.info.run_name.split(","))
        assert child.data.params["optim.lr"] == overrides["optim.lr"]
        assert child.data.params["model.bias"].lower() == overrides["model.bias"].lower()
    assert len({child.data.params["optim.lr"] + child.data.params["model.bias"] for child in children}) == 6

    # The parent: the sweep's configuration and overrides, and at the end the best child.
    assert parent.info.status == "FINISHED"
    assert parent.info.run_name == "grid"
    assert parent.data.params["fit.epochs"] == str(EPOCHS)
    assert "optim.lr=0.25,0.5,1.0" in parent.data.tags["sweep.overrides"]
    assert parent.data.tags["sweep.swept_keys"] == "optim.lr,model.bias"
    assert parent.data.tags["sweep.children_finished"] == "6"
    best = max(children, key=lambda run: run.data.metrics["final_val_acc"])
    assert parent.data.metrics["best_final_val_acc"] == best.data.metrics["final_val_acc"]
    assert (
        client.get_run(parent.data.tags["best_run_id"]).data.metrics["final_val_acc"]
        == best.data.metrics["final_val_acc"]
    )
    parent_artifacts = {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert {"config.yaml", "sweep.yaml"} <= parent_artifacts


def test_a_parallel_sweep_registers_its_best_child_in_the_store_tracking_uri_names(grid_sweep):
    """The joblib jobs ran in other processes; the sweep's own process registers the best child's model
    through the gate in the same store (MLflow's process-wide default store is never consulted)."""
    root, out = grid_sweep
    assert "Callback MlflowSweep" not in out  # no end-of-sweep error turned into a warning
    assert not (root / "mlflow.db").exists()  # MLflow's default store of the cwd was not created
    client = MlflowClient(f"sqlite:///{root}/{STORE}")
    parent = client.get_run(json.loads((root / "grid" / SWEEP_FILE).read_text())["parent_run_id"])
    [version] = client.search_model_versions("name = 'threes-sevens-3-7'")
    assert version.run_id == parent.data.tags["best_run_id"]
    assert client.get_model_version_by_alias("threes-sevens-3-7", "champion").version == version.version
    assert f"threes-sevens-3-7 version {version.version} is the champion" in out


def test_compare_prints_the_sweep_and_plots_accuracy_against_swept_parameters(grid_sweep):
    root, _ = grid_sweep
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env["PYTHONPATH"] = str(REPO)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pipeline.compare",
            "grid",
            "--tracking-uri",
            f"sqlite:///{root}/{STORE}",
            "--png",
            str(root / "grid.png"),
        ],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    header = next(line for line in lines if "final_val_acc" in line)
    assert header.split()[-3:] == ["optim.lr", "model.bias", "final_val_acc"]
    rows = lines[lines.index(header) + 1 :][:6]
    assert all("FINISHED" in row for row in rows) and len(rows) == 6
    accuracies = [float(row.split()[-1]) for row in rows]
    assert accuracies == sorted(accuracies, reverse=True)
    assert (root / "grid.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.needs_chromium
def test_mlflow_ui_shows_the_sweep_in_headless_chromium(grid_sweep, tmp_path):
    """The runs table (children under their parent, with the validation-accuracy column) and the
    compare-runs view, in headless chromium (Debian's, else Playwright's own) driven by Playwright."""
    from playwright.sync_api import expect, sync_playwright

    root, _ = grid_sweep
    uri = f"sqlite:///{root}/{STORE}"
    published = json.loads((root / "grid" / SWEEP_FILE).read_text())
    experiment, parent_id = published["experiment_id"], published["parent_run_id"]
    children = MlflowClient(uri).search_runs([experiment], f"tags.`{PARENT_TAG}` = '{parent_id}'")
    screenshots = Path(os.environ.get("SCREENSHOT_DIR", tmp_path))

    with (
        TrackingServer(uri, root / "mlruns", tmp_path / "server.log", serve_artifacts=False) as url,
        sync_playwright() as playwright,
    ):
        browser = playwright.chromium.launch(executable_path=system_deps.chromium(), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1600, "height": 1000})
            page.set_default_timeout(60_000)
            expect.set_options(timeout=60_000)  # expect() has its own 5 s default; a busy machine needs longer
            page.goto(f"{url}/#/experiments/{experiment}/runs?workflowType=machine_learning", wait_until="load")
            parent_cell = page.get_by_role("gridcell").filter(has_text="grid")
            parent_cell.first.wait_for()
            close_assistant = page.get_by_role("button", name="Close")
            if close_assistant.count():  # the assistant panel: room for the table
                close_assistant.first.click()
            parent_cell.get_by_role("button").first.click()  # expand the parent: its children appear
            for child in children:
                expect(page.get_by_role("link", name=child.info.run_name, exact=True)).to_be_visible()
            page.get_by_test_id("column-selection-dropdown").first.click()
            page.get_by_placeholder("Search columns").fill("final_val_acc")
            # the entry reading exactly final_val_acc (the search also lists best_final_val_acc, ..._3, ..._7)
            page.locator("xpath=//*[@role='dialog']//*[strong and normalize-space(.)='final_val_acc']").click()
            page.keyboard.press("Escape")
            header = page.get_by_role("columnheader", name="final_val_acc", exact=True).first
            header.scroll_into_view_if_needed()
            expect(header).to_be_visible()
            page.screenshot(path=screenshots / "mlflow-runs.png")

            ids = json.dumps([child.info.run_id for child in children])
            page.goto(f"{url}/#/compare-runs?runs={ids}&experiments={json.dumps([experiment])}", wait_until="load")
            expect(page.get_by_text(f"Comparing {len(children)} Runs")).to_be_visible()
            metric = page.get_by_text("final_val_acc", exact=True).first  # in the metrics table
            metric.scroll_into_view_if_needed()
            expect(metric).to_be_visible()
            for child in children:
                expect(page.get_by_text(child.info.run_name, exact=True).first).to_be_visible()
            page.screenshot(path=screenshots / "mlflow-compare.png", full_page=True)
        finally:
            browser.close()


def test_optuna_sweep_through_hydra_is_one_parent_with_a_child_per_trial(tmp_path):
    normalized = synthetic_normalized(tmp_path)
    multirun(
        tmp_path,
        "hparams_search=linear_optuna",
        "hydra.sweeper.n_trials=3",
        "fit.epochs=1",
        *common_overrides(tmp_path, normalized, "optuna")[:-2],
        "trainer.accelerator=cpu",
        f"hydra.sweep.dir={tmp_path}/optuna",
    )
    results = OmegaConf.load(tmp_path / "optuna/optimization_results.yaml")
    assert results.n_trials == 3 == results.n_complete
    published = json.loads((tmp_path / "optuna" / SWEEP_FILE).read_text())
    assert published["tracking_uri"].startswith("sqlite:")  # one job at a time, in process: no server needed
    client = MlflowClient(f"sqlite:///{tmp_path}/{STORE}")
    parent = client.get_run(published["parent_run_id"])
    children = client.search_runs([published["experiment_id"]], f"tags.`{PARENT_TAG}` = '{parent.info.run_id}'")
    assert len(children) == 3 and all(child.info.status == "FINISHED" for child in children)
    assert parent.data.tags["sweep.swept_keys"] == "optim.lr,fit.batch_size,optim.momentum"
    assert parent.data.metrics["best_final_val_acc"] == pytest.approx(results.best_value)
    best = client.get_run(parent.data.tags["best_run_id"])
    assert best.data.metrics["final_val_acc"] == pytest.approx(results.best_value)
    assert {key: best.data.params[key] for key in results.best_params} == {  # one best, also on a tie
        key: str(value) for key, value in results.best_params.items()
    }
    sampled = [{key: child.data.params[key] for key in results.best_params} for child in children]
    assert {key: str(value) for key, value in results.best_params.items()} in sampled  # Optuna's best is a child
    for child in children:  # each trial's name is its sampled values
        assert child.info.run_name == ",".join(f"{key}={child.data.params[key]}" for key in results.best_params)


def test_an_interrupt_whose_exit_python_dropped_still_ends_the_sweep_at_the_next_boundary():
    """A signal handled while Python runs a __del__ (or a weakref callback) has its SystemExit printed
    and dropped ("Exception ignored in"): the sweep keeps the signal and leaves, with 128 + signal,
    when the next job starts, when the running job ends, or at the sweep's end."""
    sweep = MlflowSweep(server=False)

    class Collected:
        def __del__(self):
            sweep._interrupt(signal.SIGINT, None)  # raises SystemExit(130), which Python drops here

    previous = {signum: signal.getsignal(signum) for signum in lifecycle.STOP_SIGNALS}
    try:
        Collected()  # collected at once: its __del__ runs the handler
        boundaries = [
            lambda: sweep.on_job_start(config=None, task_function=None),
            lambda: sweep.on_job_end(config=None, job_return=None),
            lambda: sweep.on_multirun_end(config=None),
        ]
        for boundary in boundaries:
            with pytest.raises(SystemExit) as left:
                boundary()
            assert left.value.code == 128 + signal.SIGINT
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
