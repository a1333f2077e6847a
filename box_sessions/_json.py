"""Box's JSON answers read as an object, or as nothing when they are not one."""

from __future__ import annotations

import json
from typing import Any

__all__ = ["json_object"]


def json_object(content: bytes) -> dict[str, Any]:
    """The JSON object in ``content``; an empty dict when it is empty, not JSON or not an object.

    Box's answers and error bodies are JSON objects; a proxy's HTML page, an empty body, a JSON
    array or a body nested too deep to parse says nothing this package reads, so each counts as ``{}``.
    """
    try:
        body = json.loads(content)
    except (ValueError, RecursionError):  # json raises RecursionError on deeply nested arrays/objects
        return {}
    return body if isinstance(body, dict) else {}
