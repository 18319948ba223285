"""Bad input, counted per reason, with a few examples of each kept for inspection.

Nothing that arrives malformed may stop the pipeline: the stage that sees it counts it here,
and the agent reports the counts and examples with its telemetry.

    quality = Quality()
    quality.count("malformed_payload", example=payload[:200])
    counts, examples = quality.take()   # what was counted since the last take
"""

from collections import Counter, deque

__all__ = ["Quality"]

_EXAMPLE_CHARS = 200


class Quality:
    """Counts of bad input per reason since the last `take`, and the newest examples."""

    def __init__(self, keep: int = 20) -> None:
        self.totals: Counter[str] = Counter()
        self._since: Counter[str] = Counter()
        self._examples: deque[tuple[str, str]] = deque(maxlen=keep)

    def count(self, reason: str, n: int = 1, *, example: str | None = None) -> None:
        """Note `n` bad items for `reason` (a short snake_case word: `nan`, `time_backwards`)."""
        if n <= 0:
            return
        self.totals[reason] += n
        self._since[reason] += n
        if example is not None:
            self._examples.append((reason, example[:_EXAMPLE_CHARS]))

    def take(self) -> tuple[dict[str, int], list[tuple[str, str]]]:
        """Counts and examples since the last take, which starts a new interval."""
        if not self._since:
            return {}, []  # the usual case, taken at every chunk: nothing to copy or clear
        counts, examples = dict(self._since), list(self._examples)
        self._since.clear()
        self._examples.clear()
        return counts, examples
