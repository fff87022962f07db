"""What the service keeps of a shopper: a keyed hash of the id, for a bounded time, erasable.

* :class:`Pseudonyms` turns the ``user_id`` a client sends into HMAC-SHA256 under
  the service's secret (``serving.user_id_secret`` or ``SLATEWISE_USER_ID_SECRET``),
  truncated to 128 bits and hex-encoded. Only that pseudonym reaches the store, the
  assignment hash and the exports; the raw id is never written anywhere. Without the
  secret a pseudonym cannot be linked back to an id by trying candidate ids.
* :func:`resolve_secret` finds the secret: the configured one, or for the embedded
  default configuration one generated once and kept beside the policy files.
* :func:`noisy_counts` and :func:`noisy_sums` release per-arm aggregates with
  Laplace noise (epsilon-differential privacy per release) for dashboards shared
  outside the team.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from simulator.errors import ConfigError

#: file under ``serving.model_dir`` holding the generated secret of the embedded default
SECRET_FILE = "user-id-secret"
#: shortest accepted secret (characters); 32 random hex characters carry 128 bits
MIN_SECRET_CHARS = 16
#: hex characters of a pseudonym (128 bits)
PSEUDONYM_CHARS = 32


class Pseudonyms:
    """Keyed hashes of shopper ids.

    Args:
        secret: the HMAC key (at least :data:`MIN_SECRET_CHARS` characters).
    """

    def __init__(self, secret: str) -> None:
        if len(secret) < MIN_SECRET_CHARS:
            raise ConfigError(f"`serving.user_id_secret` must be at least {MIN_SECRET_CHARS} characters, "
                              f"found {len(secret)}; generate one with `python -c \"import secrets; "
                              "print(secrets.token_hex(32))\"`.")
        self._key = secret.encode()

    def of(self, user_id: str) -> str:
        """The pseudonym of ``user_id``: 32 hex characters of HMAC-SHA256(secret, user_id)."""
        return hmac.new(self._key, user_id.encode(), hashlib.sha256).hexdigest()[:PSEUDONYM_CHARS]


def resolve_secret(configured: str, model_dir: str | os.PathLike[str], *, generate: bool) -> str:
    """The user-id secret the service runs with.

    Args:
        configured: ``serving.user_id_secret`` (the environment already applied).
        model_dir: where a generated secret is kept (``<model_dir>/user-id-secret``, mode 0600).
        generate: whether a missing secret may be generated (the embedded default
            configuration); otherwise a missing secret is an error.

    Raises:
        ConfigError: no secret is configured and none may be generated, naming the key
            and the environment variable.
    """
    if configured:
        return configured
    path = Path(model_dir) / SECRET_FILE
    if path.exists():
        held = path.read_text().strip()
        if held:
            return held
    if not generate:
        raise ConfigError("`serving.user_id_secret` is not set: the service stores only keyed hashes of "
                          "user ids and needs a secret for them; set it in the [serving] table or in "
                          "SLATEWISE_USER_ID_SECRET (keep it out of version control; changing it "
                          "reshuffles every user's assignment).")
    path.parent.mkdir(parents=True, exist_ok=True)
    fresh = secrets.token_hex(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, fresh.encode())
    finally:
        os.close(fd)
    return fresh


@dataclass(frozen=True, slots=True)
class NoisyRelease:
    """Per-arm aggregates with Laplace noise.

    Attributes:
        epsilon: privacy budget of this release (counts and sums each get half).
        count_scale: Laplace scale of each count (sensitivity 1 / (epsilon / 2)).
        sum_scale: Laplace scale of each reward sum (reward range / (epsilon / 2)).
        counts: noisy decision counts, shape (n_arms,).
        sums: noisy reward sums, shape (n_arms,).
    """

    epsilon: float
    count_scale: float
    sum_scale: float
    counts: npt.NDArray[np.float64]
    sums: npt.NDArray[np.float64]


def noisy_release(counts: npt.ArrayLike, sums: npt.ArrayLike, *, epsilon: float, reward_range: float,
                  seed: int | None) -> NoisyRelease:
    """Release per-arm counts and reward sums with epsilon-differential privacy (Laplace mechanism).

    One shopper's decision changes one arm's count by 1 and its reward sum by at most
    ``reward_range``; each half of the budget goes to one of the two vectors, so the
    release as a whole is ``epsilon``-DP per decision. Releases compose: ``m`` releases
    of the same data spend ``m * epsilon``; seeding the noise by the data's state (as
    the service does) makes a repeated query return the same numbers instead of fresh
    noise that averages out.

    Raises:
        ConfigError: ``epsilon`` or ``reward_range`` not a positive finite number.
    """
    if not np.isfinite(epsilon) or epsilon <= 0:
        raise ConfigError(f"`epsilon` must be a positive number, found {epsilon!r}.")
    if not np.isfinite(reward_range) or reward_range <= 0:
        raise ConfigError(f"`reward_range` must be a positive number, found {reward_range!r}.")
    c = np.asarray(counts, dtype=np.float64)
    s = np.asarray(sums, dtype=np.float64)
    rng = np.random.default_rng(seed)
    count_scale = 1.0 / (epsilon / 2.0)
    sum_scale = reward_range / (epsilon / 2.0)
    return NoisyRelease(epsilon=float(epsilon), count_scale=count_scale, sum_scale=sum_scale,
                        counts=c + rng.laplace(0.0, count_scale, size=c.shape),
                        sums=s + rng.laplace(0.0, sum_scale, size=s.shape))
