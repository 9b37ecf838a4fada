"""Untrusted text (from devices, runtimes, servers) made fit for one log or output line."""

from __future__ import annotations


def one_line(text: str, limit: int) -> str:
    """`text` as one printable line of at most `limit` characters, whitespace collapsed."""
    # Only the head is looked at, with room for whitespace that collapsing will remove.
    printable = "".join(c if c.isprintable() else " " for c in text[: limit * 4])
    return " ".join(printable.split())[:limit].rstrip()
