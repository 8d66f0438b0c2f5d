"""Escaping for the medium (DESIGN §13): text trainops did not write — file names, job output,
provider answers, errors quoting them — made inert before it is printed or posted.

`line` and `block` are for terminals and logs (control characters shown as `\\x1b`, `\\n`, ...;
a line starting with `::` cannot be read as a GitHub workflow command); `md_text` and `md_code`
for markdown (PR and commit comments, job summaries); `workflow_data` and `workflow_property` for
workflow commands (`::error file=…::…`). Scrubbing secrets is another boundary's job (`scrub`).
"""

from __future__ import annotations

import re
import unicodedata

# Line and paragraph separators and the bidirectional controls that reorder what a reviewer
# reads ("Trojan Source"), besides the C0/C1 control characters.
_INVISIBLE = frozenset("\u2028\u2029\u200e\u200f\u202a\u202b\u202c\u202d\u202e") | frozenset(
    "\u2066\u2067\u2068\u2069"
)
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
_MD_SPECIAL = re.compile(r"([\\`\[\]<>|])")  # code, links and images, HTML, table cells


def _visible(ch: str, keep: str) -> str:
    if ch in keep:
        return ch
    if ch in _NAMED:
        return _NAMED[ch]
    if ch in _INVISIBLE or unicodedata.category(ch) == "Cc":
        code = ord(ch)
        return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"
    return ch


def _needs(text: str, keep: str) -> bool:
    return any(
        (ch not in keep) and (ch in _INVISIBLE or unicodedata.category(ch) == "Cc") for ch in text
    )


def line(text: str) -> str:
    """One line for a terminal: every control character (newlines too) shown escaped."""
    if not _needs(text, ""):
        return text
    return "".join(_visible(ch, "") for ch in text)


def block(text: str) -> str:
    """Several lines for a terminal or log (a job's log tail): newlines and tabs kept, other
    control characters shown escaped, and a line that GitHub Actions would take for a workflow
    command (`::error::…`, `::add-mask::…`) starts with `\\x3a` instead of its first colon."""
    if _needs(text, "\n\t"):
        text = "".join(_visible(ch, "\n\t") for ch in text)
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
    if _needs(text, "\n\r"):
        text = "".join(_visible(ch, "\n\r") for ch in text)
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def workflow_property(text: str) -> str:
    """A property value of a workflow command (`file=…`): also `:` and `,` encoded."""
    return workflow_data(text).replace(":", "%3A").replace(",", "%2C")
