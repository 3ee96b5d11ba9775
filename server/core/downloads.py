"""Headers for files people download (posters, exports)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import quote

from litestar.openapi.spec import OpenAPIMediaType, OpenAPIType, Operation, Schema

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
PDF = "application/pdf"
PNG = "image/png"
SVG = "image/svg+xml"
JSON = "application/json"

_UNSAFE = re.compile(r'[\\/:*?"<>|\x00-\x1f\x7f]+')


def content_disposition(filename: str, fallback: str, *, inline: bool = False) -> str:
    """``attachment; filename="<ascii fallback>"; filename*=UTF-8''<percent-encoded name>`` (RFC 6266/5987).

    The UTF-8 name keeps Chinese titles; characters that are not allowed in file names are replaced.
    """
    name = _UNSAFE.sub("_", filename).strip(" .") or fallback
    ascii_name = _UNSAFE.sub("_", fallback).encode("ascii", "ignore").decode() or "download"
    kind = "inline" if inline else "attachment"
    return f"{kind}; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name, safe='')}"


def file_operation(*media_types: str) -> type[Operation]:
    """An OpenAPI operation (the route's ``operation_class``) whose 200 answer is a file in one of
    ``media_types`` (the ``format`` query picks it). JSON, if listed, keeps the schema Litestar made."""

    @dataclass
    class FileOperation(Operation):
        def __post_init__(self) -> None:
            ok = (self.responses or {}).get("200")
            if ok is None or not hasattr(ok, "content"):
                return
            generated = ok.content or {}
            ok.content = {
                media_type: generated[JSON] if media_type == JSON and JSON in generated
                else OpenAPIMediaType(schema=Schema(type=OpenAPIType.STRING, content_media_type=media_type))
                for media_type in media_types
            }

    return FileOperation
