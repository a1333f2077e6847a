"""The README's code, as a test reads it: a section's first Python block, and the store it shows, run as printed."""

from __future__ import annotations

import re
import types
from pathlib import Path
from typing import Any

README = Path(__file__).parent.parent.parent / "README.md"


def readme_python_block(heading: str) -> str:
    """The first ``python`` code block of the README section headed exactly ``heading`` (``"## FastAPI"``)."""
    text = README.read_text(encoding="utf-8")
    start = text.index(f"\n{heading}\n")
    level = heading.split(" ", 1)[0]
    ends = [i for i in (text.find(f"\n{'#' * n} ", start + 1) for n in range(1, len(level) + 1)) if i != -1]
    end = min(ends) if ends else len(text)
    match = re.search(r"```python\n(.*?)```", text[start:end], re.DOTALL)
    assert match is not None, f"no python block in README section {heading!r}"
    return match.group(1)


def readme_store() -> Any:
    """The module the README's "Another store" block makes, run as printed: its ``MemoryShare`` and parts."""
    module = types.ModuleType("readme_another_store")
    exec(compile(readme_python_block("### Another store"), "README.md (Another store)", "exec"), module.__dict__)  # noqa: S102 - the README's own code, run as a user would
    return module
