"""Session termination: the manager, the endpoints, batching, the bulk runner and its report."""

from ._batching import Batcher, Source
from ._endpoints import FIELDS, Field, SessionTerminationMessage, request_of
from ._manager import SessionTerminationManager
from ._report import (
    Acceptance,
    BatchResult,
    Failure,
    Progress,
    Tally,
    TerminationReport,
    failure_kind,
    summary_text,
    utc_text,
)
from ._runner import DEFAULT_BATCH_SIZE, DEFAULT_MAX_CONCURRENCY, BulkJob, ProgressCallback

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "DEFAULT_MAX_CONCURRENCY",
    "FIELDS",
    "Acceptance",
    "BatchResult",
    "Batcher",
    "BulkJob",
    "Failure",
    "Field",
    "Progress",
    "ProgressCallback",
    "SessionTerminationManager",
    "SessionTerminationMessage",
    "Source",
    "Tally",
    "TerminationReport",
    "failure_kind",
    "request_of",
    "summary_text",
    "utc_text",
]
