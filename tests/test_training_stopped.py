"""A training job ended by SIGTERM (a timeout, `docker stop`, AWS Batch) leaves no staging folder and
no MLflow run marked RUNNING: a rerun starts clean and the run list tells the truth."""

import subprocess
import sys
import textwrap
from pathlib import Path

SCRIPT = textwrap.dedent(
    """
    import os, signal, sys, time
    from pathlib import Path
    from pipeline.settings import Settings
    from pipeline.training.data import ExportFolder
    from pipeline.training.run import new_run, tracked
    from pipeline.training.sft import SftConfig

    settings = Settings(data_dir=Path(sys.argv[1]))
    run = new_run(settings, "sft")
    export = ExportFolder(Path(sys.argv[1]), {"export_id": "e1"})
    try:
        with tracked(run, settings, SftConfig("x"), export, {"train": "h"}, "base"):
            (run.checkpoints / "checkpoint-1").mkdir(parents=True)
            print(run.mlflow_run_id, flush=True)
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(30)
    except KeyboardInterrupt:
        sys.exit(3)
    """
)


def test_a_job_ended_by_sigterm_cleans_up_and_ends_its_mlflow_run(tmp_path):
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path)], capture_output=True, text=True, timeout=300,
        cwd=Path(__file__).resolve().parents[1],
    )
    assert done.returncode == 3, done.stderr[-2000:]
    run_id = done.stdout.split()[-1]
    assert not any((tmp_path / "model-versions").iterdir())  # neither staging nor a published version
    from mlflow import MlflowClient

    run = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}").get_run(run_id)
    assert run.info.status == "FAILED"
