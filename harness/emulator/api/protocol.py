"""The RDS Query protocol (form-encoded requests, XML answers), driven by botocore's model.

Nothing here knows about individual operations: requests are decoded and results
encoded by walking the operation's input/output shapes, mirroring botocore's
``QuerySerializer`` and ``QueryParser``.  Whatever boto3 sends therefore parses,
and whatever we send back boto3 parses, for every operation in the model.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any
from urllib.parse import parse_qsl
from xml.etree import ElementTree as ET

from botocore.model import ListShape, MapShape, Shape, StructureShape

from .faults import ApiError, fault, rds_model

__all__ = ["parse_request", "rds_model", "serialize_error", "serialize_response"]

# Query parameters nested by the dots in their keys:
# Tags.Tag.1.Key=a -> {"Tags": {"Tag": {"1": {"Key": "a"}}}}.
Params = dict[str, "Params | str"]

_INDEX = re.compile(r"[1-9][0-9]*")
_INTEGER = re.compile(r"[+-]?[0-9]+")
_EPOCH = re.compile(r"[0-9]+(\.[0-9]+)?")


def _xmlns() -> str:
    return rds_model().metadata["xmlNamespace"]


def _wire_name(shape: Shape, member_name: str) -> str:
    """The key/element a structure member travels under (botocore's naming rules)."""
    if isinstance(shape, ListShape) and shape.serialization.get("flattened"):
        # A flattened list with a named member is sent under that member's name.
        return shape.member.serialization.get("name", shape.serialization.get("name", member_name))
    return shape.serialization.get("name", member_name)


# ---------------------------------------------------------------- requests


def parse_request(body: bytes | str, query_string: str = "") -> tuple[str, dict[str, Any]]:
    """Decode a Query request into ``(operation name, params keyed by API member names)``."""
    if isinstance(body, bytes):
        body = body.decode("utf-8", errors="replace")
    flat = dict(parse_qsl(query_string, keep_blank_values=True))
    flat.update(parse_qsl(body, keep_blank_values=True))
    action = flat.get("Action")
    if not action:
        raise fault("MissingAction", "The request must contain the parameter Action")
    model = rds_model()
    if action not in model.operation_names:
        raise fault(
            "InvalidAction",
            f"Could not find operation {action} for version {model.api_version}",
        )
    operation = model.operation_model(action)
    if operation.input_shape is None:
        return operation.name, {}
    return operation.name, _parse_structure(operation.input_shape, _nest(flat), "")


def _nest(flat: Mapping[str, str]) -> Params:
    """Split dotted keys into a tree; envelope and query-auth keys are dropped."""
    root: Params = {}
    for key, value in flat.items():
        if key in ("Action", "Version") or key.startswith("X-Amz-"):
            continue
        *parents, leaf = key.split(".")
        node = root
        for part in parents:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise fault("MalformedQueryString", f"Parameter {key} nests under a parameter with a value")
            node = child
        if isinstance(node.get(leaf), dict):
            raise fault("MalformedQueryString", f"Parameter {key} has both a value and nested parameters")
        node[leaf] = value
    return root


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _missing(parameter: str) -> ApiError:
    return fault("MissingParameter", f"The request must contain the parameter {parameter}")


def _parse(shape: Shape, node: Params | str, path: str) -> Any:
    if isinstance(shape, StructureShape):
        return _parse_structure(shape, node, path)
    if isinstance(shape, ListShape):
        return _parse_list(shape, node, path)
    if isinstance(shape, MapShape):
        return _parse_map(shape, node, path)
    return _parse_scalar(shape, node, path)


def _expect_tree(node: Params | str, path: str) -> Params:
    if not isinstance(node, dict):
        raise fault("InvalidParameterValue", f"Parameter {path} takes nested parameters, not '{node}'")
    return node


def _parse_structure(shape: StructureShape, node: Params | str, path: str) -> dict[str, Any]:
    tree = _expect_tree(node, path)
    parsed: dict[str, Any] = {}
    for name, member in shape.members.items():
        key = _wire_name(member, name)
        if key in tree:
            parsed[name] = _parse(member, tree[key], _join(path, key))
        elif name in shape.required_members:
            raise _missing(_join(path, key))
    return parsed


def _indexed(node: Params | str, path: str) -> list[tuple[str, Params | str]]:
    """The ``path.N`` children of ``node`` in index order; N counts from 1."""
    tree = _expect_tree(node, path)
    for index in tree:
        if not _INDEX.fullmatch(index):
            raise fault("MalformedQueryString", f"Invalid list index {path}.{index}: indices count from 1")
    return [(f"{path}.{index}", tree[index]) for index in sorted(tree, key=int)]


def _parse_list(shape: ListShape, node: Params | str, path: str) -> list[Any]:
    if node == "":  # botocore sends an empty list as "Prefix="
        return []
    if not shape.serialization.get("flattened"):
        item = shape.member.serialization.get("name", "member")
        tree = _expect_tree(node, path)
        if set(tree) != {item}:
            raise fault("MalformedQueryString", f"List parameter {path} takes items named {path}.{item}.N")
        node, path = tree[item], f"{path}.{item}"
    return [_parse(shape.member, child, child_path) for child_path, child in _indexed(node, path)]


def _parse_map(shape: MapShape, node: Params | str, path: str) -> dict[Any, Any]:
    if not shape.serialization.get("flattened"):
        node, path = _expect_tree(node, path).get("entry", {}), f"{path}.entry"
    key_name = shape.key.serialization.get("name", "key")
    value_name = shape.value.serialization.get("name", "value")
    parsed: dict[Any, Any] = {}
    for entry_path, entry in _indexed(node, path):
        entry = _expect_tree(entry, entry_path)
        for name in (key_name, value_name):
            if name not in entry:
                raise _missing(f"{entry_path}.{name}")
        key = _parse(shape.key, entry[key_name], f"{entry_path}.{key_name}")
        parsed[key] = _parse(shape.value, entry[value_name], f"{entry_path}.{value_name}")
    return parsed


def _parse_scalar(shape: Shape, node: Params | str, path: str) -> Any:
    if not isinstance(node, str):
        raise fault("InvalidParameterValue", f"Parameter {path} takes a single {shape.type_name} value")
    try:
        match shape.type_name:
            case "integer" | "long":
                if not _INTEGER.fullmatch(node):
                    raise ValueError(node)
                return int(node)
            case "boolean":
                if node.lower() not in ("true", "false"):
                    raise ValueError(node)
                return node.lower() == "true"
            case "float" | "double":
                return float(node)
            case "timestamp":
                return _parse_timestamp(node)
            case "blob":
                return base64.b64decode(node, validate=True)
            case _:
                return node
    except (ValueError, OverflowError, OSError):
        raise fault(
            "InvalidParameterValue", f"Invalid {shape.type_name} value '{node}' for parameter {path}"
        ) from None


def _parse_timestamp(text: str) -> datetime:
    """ISO 8601 (naive means UTC) or epoch seconds, as a timezone-aware datetime."""
    if _EPOCH.fullmatch(text):
        return datetime.fromtimestamp(float(text), timezone.utc)
    value = datetime.fromisoformat(text)
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


# --------------------------------------------------------------- responses


def serialize_response(operation_name: str, result: Mapping[str, Any] | None, request_id: str) -> bytes:
    """Encode ``result`` (values keyed or attributed by output member name) as the XML answer."""
    operation = rds_model().operation_model(operation_name)
    root = ET.Element(f"{operation.name}Response", xmlns=_xmlns())
    shape = operation.output_shape
    if shape is not None:
        wrapper = ET.SubElement(root, shape.serialization.get("resultWrapper", f"{operation.name}Result"))
        _write_members(wrapper, shape, result or {})
    metadata = ET.SubElement(root, "ResponseMetadata")
    ET.SubElement(metadata, "RequestId").text = request_id
    return ET.tostring(root, encoding="utf-8")


def serialize_error(err: ApiError, request_id: str) -> bytes:
    """Encode ``err`` as the ``<ErrorResponse>`` boto3 turns into ``client.exceptions.<Code>``."""
    root = ET.Element("ErrorResponse", xmlns=_xmlns())
    error = ET.SubElement(root, "Error")
    ET.SubElement(error, "Type").text = "Sender" if err.sender else "Receiver"
    ET.SubElement(error, "Code").text = err.code
    ET.SubElement(error, "Message").text = err.message
    ET.SubElement(root, "RequestId").text = request_id
    return ET.tostring(root, encoding="utf-8")


def _field(value: Any, name: str) -> Any:
    """A member's value from a mapping, or else from an attribute of the same name."""
    return value.get(name) if isinstance(value, Mapping) else getattr(value, name, None)


def _write_members(parent: ET.Element, shape: StructureShape, value: Any) -> None:
    for name, member in shape.members.items():
        member_value = _field(value, name)
        if member_value is not None:
            _write(parent, member, _wire_name(member, name), member_value)


def _write(parent: ET.Element, shape: Shape, tag: str, value: Any) -> None:
    flattened = bool(shape.serialization.get("flattened"))
    if isinstance(shape, ListShape):
        container = parent if flattened else ET.SubElement(parent, tag)
        item = tag if flattened else shape.member.serialization.get("name", "member")
        for element in value:
            _write(container, shape.member, item, element)
    elif isinstance(shape, MapShape):
        container = parent if flattened else ET.SubElement(parent, tag)
        for key, element in value.items():
            entry = ET.SubElement(container, tag if flattened else "entry")
            _write(entry, shape.key, shape.key.serialization.get("name", "key"), key)
            _write(entry, shape.value, shape.value.serialization.get("name", "value"), element)
    elif isinstance(shape, StructureShape):
        _write_members(ET.SubElement(parent, tag), shape, value)
    else:
        ET.SubElement(parent, tag).text = _text(shape, value)


def _text(shape: Shape, value: Any) -> str:
    match shape.type_name:
        case "boolean":
            return "true" if value else "false"
        case "timestamp":
            return _format_timestamp(value)
        case "blob":
            return base64.b64encode(value).decode("ascii")
        case _:
            return str(value)


def _format_timestamp(value: datetime) -> str:
    """ISO 8601 in UTC with milliseconds, as AWS sends it; naive datetimes are taken as UTC."""
    utc = value.astimezone(timezone.utc) if value.tzinfo else value.replace(tzinfo=timezone.utc)
    return f"{utc:%Y-%m-%dT%H:%M:%S}.{utc.microsecond // 1000:03d}Z"
