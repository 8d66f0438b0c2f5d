"""Escaping for the medium (DESIGN §13): text trainops did not write — file names, job output,
provider answers, errors quoting them — made inert before it is printed or posted.

`line` and `block` are for terminals and logs (control characters shown as `\\x1b`, `\\n`, ...;
a line starting with `::` cannot be read as a GitHub workflow command); `md_text` and `md_code`
for markdown (PR and commit comments, job summaries); `workflow_data` and `workflow_property` for
workflow commands (`::error file=…::…`). Scrubbing secrets is another boundary's job (`scrub`).
"""

from __future__ import annotations

import re

# Line and paragraph separators and the bidirectional controls that reorder what a reviewer
# reads ("Trojan Source"), besides the C0/C1 control characters (Unicode category Cc: exactly
# U+0000-U+001F and U+007F-U+009F, a set the standard keeps fixed).
_INVISIBLE = "\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069"
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
_MD_SPECIAL = re.compile(r"([\\`\[\]<>|])")  # code, links and images, HTML, table cells


def _unsafe(keep: str) -> re.Pattern[str]:
    """The characters shown escaped, but for those in `keep` (one compiled class: a table of
    30,000 rows escapes 200,000 cells, which a test per character made a second's work)."""
    controls = "".join(
        f"\\x{c:02x}" for c in (*range(0x20), *range(0x7F, 0xA0)) if chr(c) not in keep
    )
    return re.compile(f"[{controls}{_INVISIBLE}]")


_UNSAFE = {keep: _unsafe(keep) for keep in ("", "\n\t", "\n\r")}


def _visible(match: re.Match[str]) -> str:
    ch = match.group()
    if ch in _NAMED:
        return _NAMED[ch]
    code = ord(ch)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def line(text: str) -> str:
    """One line for a terminal: every control character (newlines too) shown escaped."""
    return _UNSAFE[""].sub(_visible, text)


def block(text: str) -> str:
    """Several lines for a terminal or log (a job's log tail): newlines and tabs kept, other
    control characters shown escaped, and a line that GitHub Actions would take for a workflow
    command (`::error::…`, `::add-mask::…`) starts with `\\x3a` instead of its first colon."""
    text = _UNSAFE["\n\t"].sub(_visible, text)
    if "::" not in text:
        return text
    return re.sub(r"(?m)^(\s*):(?=:)", r"\1\\x3a", text)


def md_text(text: str) -> str:
    """Inline markdown text (a table cell, a list item): one line, every character markdown or
    HTML would interpret backslash-escaped, so a job's output cannot add links, images, HTML
    comments (a forged marker) or table columns."""
    return _MD_SPECIAL.sub(r"\\\1", line(" ".join(text.split())))


def md_code(text: str, *, in_table: bool = False) -> str:
    """`text` as a markdown code span: one line, fenced with more backticks than it contains;
    in a table, `|` is escaped too (GitHub splits cells before reading code spans)."""
    body = line(text)
    if in_table:
        body = body.replace("|", "\\|")
    longest = max((len(m) for m in re.findall(r"`+", body)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if body.startswith("`") or body.endswith("`") or not body else ""
    return f"{fence}{pad}{body}{pad}{fence}"


def workflow_data(text: str) -> str:
    """The message of a workflow command, encoded as the GitHub runner decodes it; other control
    characters shown escaped (the same line reaches a terminal when run by hand)."""
    text = _UNSAFE["\n\r"].sub(_visible, text)
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def workflow_property(text: str) -> str:
    """A property value of a workflow command (`file=…`): also `:` and `,` encoded."""
    return workflow_data(text).replace(":", "%3A").replace(",", "%2C")
