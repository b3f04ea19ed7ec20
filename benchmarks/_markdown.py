"""BENCHMARKS.md holds one '## ' section per benchmark script; each script rewrites its own."""

from __future__ import annotations

from pathlib import Path

BENCHMARKS_MD = Path(__file__).resolve().parent.parent / "BENCHMARKS.md"
TITLE = (
    "# Benchmarks\n\nEach section is written by the script it names; ratios are measured "
    "side by side in one run.\n\n"
)


def replace_section(path: Path, section: str) -> None:
    """Put `section` (from its '## ' heading) in the markdown file, replacing an earlier
    version of it and leaving every other section as it is."""
    text = path.read_text(encoding="utf-8") if path.exists() else TITLE
    heading = section.splitlines()[0]
    if heading in text:
        begin = text.index(heading)
        end = text.find("\n## ", begin + len(heading))
        text = text[:begin] + section + (text[end + 1 :] if end >= 0 else "")
    else:
        text = text.rstrip("\n") + "\n\n" + section
    path.write_text(text, encoding="utf-8")
