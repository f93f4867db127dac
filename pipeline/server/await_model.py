"""`python -m pipeline.server.await_model [--every SECONDS] COMMAND...`: wait until the registered model
version that COMMAND's `--model-uri models:/NAME@ALIAS` (or `models:/NAME/VERSION`) names exists, then run
COMMAND in this process's place. docker/compose.yaml's `serve` runs MLflow's scoring server for the champion
this way: started before any training has registered one, it waits, saying so in one line, instead of exiting
and being restarted forever.

    python -m pipeline.server.await_model mlflow models serve --model-uri models:/threes-sevens-3-7@champion ...

The tracking store is MLflow's (MLFLOW_TRACKING_URI, and its MLFLOW_TRACKING_USERNAME / PASSWORD). A server
that refuses the account, or a model the account may not read, is one line and exit 1: waiting would not help.
"""

from __future__ import annotations

import os
import re
import sys
import time

from pipeline.config.cli import fail
from pipeline.config.secrets import redact

MODEL_URI = re.compile(r"models:/(?P<name>[^/@]+)(?:@(?P<alias>[^/]+)|/(?P<version>\d+))")
EVERY_S = 10.0  # how often the registry is asked again, unless --every says
CONNECT_TIMEOUT_S = 30


def model_uri(command: list[str]) -> str:
    """The value of COMMAND's --model-uri (or -m), which must be a registry URI."""
    for flag, value in zip(command, command[1:]):
        if flag in ("--model-uri", "-m"):
            uri = value
            break
    else:
        uri = next((part.split("=", 1)[1] for part in command if part.startswith("--model-uri=")), None)
    if uri is None:
        fail("await_model: the command has no --model-uri models:/NAME@ALIAS to wait for")
    if not MODEL_URI.fullmatch(uri):
        fail(f"await_model: --model-uri {uri}: expected models:/NAME@ALIAS or models:/NAME/VERSION")
    return uri


def registered_version(client, uri: str) -> str | None:
    """The version `uri` names, or None while it does not exist yet; MlflowException for any other refusal."""
    from mlflow.exceptions import MlflowException
    from mlflow.protos.databricks_pb2 import RESOURCE_DOES_NOT_EXIST, ErrorCode

    found = MODEL_URI.fullmatch(uri)
    try:
        model = client.get_registered_model(found["name"])
        if found["alias"]:
            return model.aliases.get(found["alias"])  # the alias -> version map
        return client.get_model_version(found["name"], found["version"]).version
    except MlflowException as err:
        if err.error_code == ErrorCode.Name(RESOURCE_DOES_NOT_EXIST):
            return None
        raise


def wait_for(uri: str, every_s: float) -> str:
    """Ask the registry every `every_s` seconds until `uri` exists (one line when the wait begins); its version."""
    import mlflow
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    from pipeline.config.errors import StoreUnavailable
    from pipeline.tracking import store_check

    tracking = mlflow.get_tracking_uri()
    try:
        store_check.check_store(tracking, f"MLFLOW_TRACKING_URI={redact(tracking)}", CONNECT_TIMEOUT_S)
    except StoreUnavailable as err:
        fail(f"await_model: {err}")
    client, said = MlflowClient(tracking), False
    while True:
        try:
            version = registered_version(client, uri)
        except MlflowException as err:
            fail(f"await_model: {uri} on {redact(tracking)}: {str(err).splitlines()[0]}")
        if version is not None:
            return version
        if not said:
            print(
                f"await_model: waiting for {uri}: not registered yet on {redact(tracking)} (a training registers "
                f"it: docker compose run --rm trainer); asking again every {every_s:g} s",
                file=sys.stderr,
                flush=True,
            )
            said = True
        time.sleep(every_s)


def main(argv: list[str]) -> None:
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        raise SystemExit(0 if argv else 1)
    every_s = EVERY_S
    if argv[0] == "--every":
        try:
            every_s = float(argv[1])
        except (IndexError, ValueError):
            fail("await_model: --every takes a number of seconds, then the command")
        argv = argv[2:]
    uri = model_uri(argv)
    version = wait_for(uri, every_s)
    print(f"await_model: {uri} is version {version}; starting {argv[0]}", file=sys.stderr, flush=True)
    os.execvp(argv[0], argv)


if __name__ == "__main__":
    main(sys.argv[1:])
