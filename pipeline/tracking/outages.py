"""A tracking server that goes away during a run: tolerated for up to tracking.outage_s (MLflow's own
HTTP retries, set to span it), and told apart from other failures when it stays away longer (the
training then leaves its run to be recorded later: results.py)."""

from __future__ import annotations

import os

import requests

from pipeline.tracking.store_check import causes


def is_outage(err: BaseException) -> bool:
    """Whether an MLflow call failed because its http(s) store could not be reached (refused,
    unknown, timed out, or answering 5xx until MLflow's retries ran out)."""
    lost = (requests.exceptions.ConnectionError, requests.exceptions.Timeout, requests.exceptions.RetryError)
    return any(isinstance(e, lost) for e in causes(err))


# MLflow retries a failed HTTP request `max_retries` times; urllib3 waits 0 s before the first
# retry and backoff_factor * 2**(k - 1) s before the k-th after it, each wait capped at 120 s.
MAX_RETRIES = 10  # MLflow refuses more (its _MLFLOW_HTTP_REQUEST_MAX_RETRIES_LIMIT)
MAX_BACKOFF_FACTOR = 120  # likewise (_MLFLOW_HTTP_REQUEST_MAX_BACKOFF_FACTOR_LIMIT)
BACKOFF_CAP_S = 120  # urllib3's Retry.DEFAULT_BACKOFF_MAX


def retry_span_s(retries: int, backoff_factor: int) -> float:
    """How long MLflow keeps retrying a request that fails at once (a refused connection)."""
    return sum(min(backoff_factor * 2 ** (k - 1), BACKOFF_CAP_S) for k in range(2, retries + 1))


def tolerate_outages(outage_s: float) -> dict[str, str]:
    """Set MLflow's HTTP retry settings (read at every request) so that a tracking server away
    for up to outage_s does not fail a request: the fewest retries, with the smallest backoff,
    whose waits add up to at least outage_s. Call it once at the start of a run, in the process
    that logs (sweep workers included). Returns what it set."""
    retries, factor = 1, 1
    while retry_span_s(retries, factor) < outage_s:
        if retries < MAX_RETRIES:
            retries += 1
        elif factor < MAX_BACKOFF_FACTOR:
            factor += 1
        else:
            break  # 9 waits of 120 s: MLflow's most
    settings = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": str(retries), "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": str(factor)}
    os.environ.update(settings)
    return settings
