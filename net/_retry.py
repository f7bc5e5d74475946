"""When to try an idempotent request again, and how long to wait first.

Exponential backoff with full jitter (so many clients that failed together do not
come back together), `Retry-After` honoured when the server sends it (up to a cap), a
bound on the total time one request spends retrying, and never a retry for a method
that is not idempotent (a STOW POST sent twice stores twice).
"""

from __future__ import annotations

import email.utils
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["DEFAULT_RETRY", "IDEMPOTENT_METHODS", "RETRY_STATUSES", "RetryPolicy"]

#: Statuses that mean "not now", not "never": rate limited or a gateway in trouble.
RETRY_STATUSES = frozenset({429, 502, 503, 504})
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})


def _no_jitter(low: float, high: float) -> float:  # pragma: no cover - used by tests
    return high


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently to retry.

    `sleep`, `jitter` and `clock` are injectable so tests can record the delays
    instead of waiting them out.
    """

    max_attempts: int = 4
    backoff_base: float = 0.25
    backoff_max: float = 8.0
    #: A Retry-After is waited for at most this long (``Retry-After: 59`` three times
    #: would otherwise block one request for three minutes).
    retry_after_max: float = 10.0
    #: The most time one request spends retrying (its attempts and waits); a wait that
    #: would go past it is not started, and a Retry-After longer than it means give up.
    max_retry_time: float = 30.0
    statuses: frozenset[int] = RETRY_STATUSES
    sleep: Callable[[float], None] = field(default=time.sleep, compare=False)
    jitter: Callable[[float, float], float] = field(default=random.uniform, compare=False)
    clock: Callable[[], float] = field(default=time.monotonic, compare=False)

    def may_retry(self, method: str, attempt: int) -> bool:
        """Whether attempt number `attempt` (1-based, just failed) may be followed by another."""
        return method.upper() in IDEMPOTENT_METHODS and attempt < self.max_attempts

    def delay(self, attempt: int, retry_after: str | None = None) -> float | None:
        """Seconds to wait after failed attempt `attempt`; None means give up now.

        A server's Retry-After (seconds or an HTTP date) wins over the backoff, capped at
        `retry_after_max`; one longer than the whole `max_retry_time` means the server is
        not coming back soon: give up now and say so.
        """
        if retry_after is not None:
            wait = parse_retry_after(retry_after)
            if wait is not None:
                return min(wait, self.retry_after_max) if wait <= self.max_retry_time else None
        cap = min(self.backoff_max, self.backoff_base * (2 ** (attempt - 1)))
        return self.jitter(0.0, cap)


def parse_retry_after(value: str, *, now: float | None = None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or HTTP-date); None if unreadable."""
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    current = time.time() if now is None else now
    return max(0.0, when.timestamp() - current)


DEFAULT_RETRY = RetryPolicy()
