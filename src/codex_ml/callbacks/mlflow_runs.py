"""``mlflow``: one MLflow run per codex-ml run, in a local file store unless told otherwise.

The tracking URI is ``tracking_uri``, else ``MLFLOW_TRACKING_URI``, else the
file store ``<project root>/mlruns`` (no server needed). MLflow 3 keeps its file
store only on request (``MLFLOW_ALLOW_FILE_STORE``); codex-ml makes that request
for a file store it is pointed at, unless the variable is already set.

Nothing goes over the network unless the user points MLflow at a server:
MLflow's usage reports (telemetry) are switched off before it is imported. A
server that fails (an error status, a refused connection, no answer) costs one
call of at most about 20 s -- 3 tries of 5 s and 2 s of back-off -- after which
the run switches the callback off with one warning, as it does any callback that
raises. Both hold only where the user has not set MLflow's variables
(:data:`QUIET_TELEMETRY`, :data:`HTTP_BOUNDS`) themselves.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from codex_ml.callbacks.scalars import flatten, scalars

#: MLflow's limits on a parameter value and on the parameters of one call.
_MAX_PARAM_LENGTH = 6000
_PARAMS_PER_BATCH = 100
#: Files of the run directory recorded as the MLflow run's artefacts, at its end.
ARTIFACTS = ("summary.json", "config.yaml", "loss_curve.png")
#: The variables MLflow 3 reads to stay quiet; either set by the user is their choice.
QUIET_TELEMETRY = ("MLFLOW_DISABLE_TELEMETRY", "DO_NOT_TRACK")
#: Bounds on a failing tracking server, read by MLflow at each request: ~20 s per call at most.
HTTP_BOUNDS = {
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "5",
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_BACKOFF_JITTER": "0.5",
}


def quiet_mlflow() -> None:
    """Telemetry off and HTTP bounded, except where the user set MLflow's variables.

    Must run before ``import mlflow``: MLflow starts its telemetry client (and
    fetches its config from the network) while it is imported.
    """
    if not any(name in os.environ for name in QUIET_TELEMETRY):
        os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
    for name, value in HTTP_BOUNDS.items():
        os.environ.setdefault(name, value)


def tracking_uri(given: str | None = None) -> str:
    """Where runs go: ``given``, ``$MLFLOW_TRACKING_URI``, or ``<project root>/mlruns``."""
    from codex_ml.resources import project_root

    uri = given or os.environ.get("MLFLOW_TRACKING_URI") or (project_root() / "mlruns").as_uri()
    if uri.startswith("file:") or "://" not in uri:
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    return uri


def metric_name(key: str) -> str:
    """A ``metrics.jsonl`` key as MLflow accepts it: ``eval_accuracy@token`` -> ``..._at_token``."""
    name = key.replace("@", "_at_")
    return "".join(c if c.isalnum() or c in "_-. /" else "_" for c in name)


class MLflowCallback:
    """Config as params, every number as a metric at its step, the run's files as artefacts.

    Rank 0 only. The MLflow run is named after the run directory (or
    ``run_name``) and ends FINISHED (completed or stopped early), KILLED
    (interrupted) or FAILED, as the codex-ml run did.
    """

    def __init__(
        self,
        tracking_uri: str | None = None,
        experiment: str = "codex-ml",
        run_name: str | None = None,
    ) -> None:
        quiet_mlflow()
        from mlflow import MlflowClient  # missing: the "track" extra, named before training

        self._client_class = MlflowClient
        self.tracking_uri: str | None = tracking_uri
        self.experiment: str = experiment
        self.run_name: str | None = run_name
        self._client: Any = None
        self.run_id: str | None = None

    def on_train_start(self, run: Any) -> None:
        if not run.is_main:
            return
        self._client = self._client_class(tracking_uri=tracking_uri(self.tracking_uri))
        found = self._client.get_experiment_by_name(self.experiment)
        experiment_id = (
            found.experiment_id if found else self._client.create_experiment(self.experiment)
        )
        name = self.run_name or Path(run.run_dir).name
        created = self._client.create_run(
            experiment_id, run_name=name, tags={"codex_ml.run_dir": str(run.run_dir)}
        )
        self.run_id = created.info.run_id
        self._log_params(flatten(run.plain_config()))

    def on_log(self, run: Any, record: Mapping[str, Any]) -> None:
        self._log_metrics(record)

    def on_evaluate(self, run: Any, metrics: Mapping[str, Any]) -> None:
        self._log_metrics(metrics)

    def on_train_end(self, run: Any, summary: Mapping[str, Any]) -> None:
        if self.run_id is None:
            return
        for name in ARTIFACTS:
            path = Path(run.run_dir) / name
            if path.is_file() and not path.is_symlink():
                self._client.log_artifact(self.run_id, str(path))
        status = {"completed": "FINISHED", "stopped": "FINISHED", "interrupted": "KILLED"}
        self._client.set_terminated(self.run_id, status.get(summary.get("status"), "FAILED"))
        self.run_id = None

    def _log_params(self, flat: Mapping[str, Any]) -> None:
        from mlflow.entities import Param

        params = [Param(key[:250], str(value)[:_MAX_PARAM_LENGTH]) for key, value in flat.items()]
        for start in range(0, len(params), _PARAMS_PER_BATCH):
            self._client.log_batch(self.run_id, params=params[start : start + _PARAMS_PER_BATCH])

    def _log_metrics(self, record: Mapping[str, Any]) -> None:
        if self.run_id is None:
            return
        import time

        from mlflow.entities import Metric

        now, step = int(time.time() * 1000), int(record.get("step", 0))
        metrics = [
            Metric(metric_name(key), value, now, step) for key, value in scalars(record).items()
        ]
        if metrics:
            self._client.log_batch(self.run_id, metrics=metrics)
