"""Turn the repositories' ``?`` placeholders into PostgreSQL's ``$1, $2, …``.

Repositories write one SQL text for both backends with ``?`` placeholders (SQLite's). A ``?``
inside a quoted string, a quoted identifier or a comment is left alone.
"""

from __future__ import annotations

from functools import lru_cache


@lru_cache(maxsize=2048)
def numbered(sql: str) -> str:
    """``sql`` with every placeholder ``?`` replaced by ``$n`` (numbered from 1, left to right)."""
    out: list[str] = []
    n = 0
    i = 0
    length = len(sql)
    while i < length:
        char = sql[i]
        if char in ("'", '"'):
            end = i + 1
            while end < length:
                if sql[end] == char:
                    if end + 1 < length and sql[end + 1] == char:  # '' or "" escapes the quote
                        end += 2
                        continue
                    break
                end += 1
            out.append(sql[i : end + 1])
            i = end + 1
            continue
        if char == "-" and sql.startswith("--", i):
            end = sql.find("\n", i)
            end = length if end == -1 else end
            out.append(sql[i:end])
            i = end
            continue
        if char == "?":
            n += 1
            out.append(f"${n}")
        else:
            out.append(char)
        i += 1
    return "".join(out)
