"""Errors the emulated RDS API returns, with the wire codes and HTTP statuses AWS uses.

Modeled RDS faults come straight from botocore's service model, so boto3 maps
each answer to the same exception class (``client.exceptions.X``) it would raise
against real AWS.  The unmodeled errors every Query API shares are listed here.
"""

from __future__ import annotations

import functools

import botocore.session
from botocore.model import ServiceModel

# Errors common to all AWS Query APIs, absent from the RDS model: name -> (HTTP status, sender fault).
_COMMON_ERRORS: dict[str, tuple[int, bool]] = {
    "InvalidParameterValue": (400, True),
    "InvalidParameterCombination": (400, True),
    "MissingParameter": (400, True),
    "InvalidAction": (400, True),
    "MissingAction": (400, True),
    "MalformedQueryString": (400, True),
    "InvalidQueryParameter": (400, True),
    "MissingAuthenticationToken": (403, True),
    "IncompleteSignature": (400, True),
    "InvalidClientTokenId": (403, True),
    "SignatureDoesNotMatch": (403, True),
    "RequestExpired": (400, True),
    "AccessDenied": (403, True),
    "Throttling": (400, True),
    "InternalFailure": (500, False),
    "ServiceUnavailable": (503, False),
}


@functools.cache
def rds_model() -> ServiceModel:
    """The RDS service model that requests, responses and errors are all derived from."""
    return botocore.session.get_session().get_service_model("rds")


class ApiError(Exception):
    """An error answer: serialized as an ``<ErrorResponse>`` with HTTP ``status``."""

    def __init__(self, code: str, message: str, status: int = 400, sender: bool = True) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status
        self.sender = sender


def fault(name: str, message: str) -> ApiError:
    """Build the error named ``name``: an RDS model error shape or a common Query error.

    Some RDS shapes use a different wire code than their name
    (``InvalidDBInstanceStateFault`` is sent as ``InvalidDBInstanceState``).
    """
    model = rds_model()
    if name in model.shape_names and model.shape_for(name).metadata.get("exception"):
        error = model.shape_for(name).metadata.get("error", {})
        return ApiError(
            error.get("code", name),
            message,
            error.get("httpStatusCode", 400),
            error.get("senderFault", True),
        )
    if name in _COMMON_ERRORS:
        status, sender = _COMMON_ERRORS[name]
        return ApiError(name, message, status, sender)
    raise ValueError(f"{name!r} is neither an RDS error shape nor a common Query API error")
