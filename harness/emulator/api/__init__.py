"""The emulator's RDS API surface: Query-protocol codec, SigV4 authentication and AWS error answers."""

from .faults import ApiError, fault
from .protocol import parse_request, rds_model, serialize_error, serialize_response
from .sigv4 import Caller, verify

__all__ = [
    "ApiError",
    "Caller",
    "fault",
    "parse_request",
    "rds_model",
    "serialize_error",
    "serialize_response",
    "verify",
]
