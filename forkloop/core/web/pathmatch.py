"""Linear-time matching of a request path against a route of default variables (issue 15).

Owns one function, used by ``urldispatcher.DynamicResource`` for routes whose variables all
take the default pattern ``[^{}/]+`` and where two of them share a path segment
(``/{name}.{ext}``, ``/{y}-{m}-{d}``). The regex such a route compiles to backtracks: time
grows with the segment's length to the power of its variable count (an 8 KB path against
``/{a}.{b}.{c}`` is about 10^10 steps). This finds the same match -- the regex's: each variable
as long as the rest allows, leftmost first -- in O(path length x variables) steps.

Theory: write the route as ``L0 V1 L1 V2 ... Vk Lk`` (literals ``Li``, possibly empty;
variables ``Vi``: one or more characters, none of ``/{}``). ``feasible[i]`` marks the
positions ``q`` where ``Li V(i+1) ... Lk`` matches the rest of the path; it is computed from
the right. Then, from the left, each variable ends at the last position the next literal may
start at, that is feasible and that the variable reaches without crossing ``/``, ``{`` or
``}``: greedy quantifiers backtracking from the longest choice pick exactly that. Imports
nothing of ours.
"""

from __future__ import annotations

__all__ = ["match_default_vars"]

_STOP = "/{}"


def match_default_vars(literals: list[str], names: list[str], path: str) -> dict[str, str] | None:
    """``{name: value}`` if ``path`` matches ``literals[0] {names[0]} literals[1] ...``
    (``len(literals) == len(names) + 1``), else None."""
    k = len(names)
    n = len(path)
    # stop[a]: the first index >= a of a character no variable may hold (n if none).
    stop = [n] * (n + 1)
    for index in range(n - 1, -1, -1):
        stop[index] = index if path[index] in _STOP else stop[index + 1]
    last = literals[k]
    # feasible[i][q]: literals[i] V(i+1) ... literals[k] matches path[q:]. Only the rows for
    # i >= 1 are kept (as "latest feasible position <= x" tables), row 0 only at q = 0.
    tail = n - len(last)
    if tail < 0 or not path.endswith(last):
        return None
    row = [False] * (n + 1)
    row[tail] = True
    latest_rows: list[list[int]] = [[]] * (k + 1)
    for i in range(k, 0, -1):
        # latest[x]: the largest q <= x with row[q], or -1.
        latest = [-1] * (n + 1)
        best = -1
        for x in range(n + 1):
            if row[x]:
                best = x
            latest[x] = best
        latest_rows[i] = latest
        literal = literals[i - 1]
        size = len(literal)
        previous = [False] * (n + 1)
        for q in range(n + 1 - size):
            a = q + size
            # V(i) spans path[a:r] with a < r <= stop[a] and row[r].
            if latest[stop[a]] > a and path.startswith(literal, q):
                previous[q] = True
        row = previous
    if not row[0]:
        return None
    out: dict[str, str] = {}
    pos = len(literals[0])
    for i in range(1, k + 1):
        end = latest_rows[i][stop[pos]]
        out[names[i - 1]] = path[pos:end]
        pos = end + len(literals[i])
    return out
