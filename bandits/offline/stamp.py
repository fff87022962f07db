"""What a learned policy was learned on: the catalog's ids and the context, for serving to check.

``slatewise learn`` writes a report beside each policy file (``POLICY.json`` beside
``POLICY.npz``) whose ``stamp`` is a :class:`CatalogStamp`; serving compares it with
the catalog it serves before it starts (:func:`stamp_mismatch`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from simulator.logs import Catalog


@dataclass(frozen=True, slots=True)
class CatalogStamp:
    """The catalog and context a policy was learned on.

    Attributes:
        n_items: catalog size.
        k: slate length.
        dim_context: context width.
        id_kind: ``int`` or ``str``.
        ids_sha256: SHA-256 of the item ids in index order (one per line).
        first_ids: the first few ids, for messages.
        context_names: the context columns' names.
    """

    n_items: int
    k: int
    dim_context: int
    id_kind: str
    ids_sha256: str
    first_ids: tuple[str, ...]
    context_names: tuple[str, ...]

    @classmethod
    def of(cls, catalog: Catalog, k: int, dim_context: int, context_names: tuple[str, ...]) -> CatalogStamp:
        """The stamp of ``catalog`` with the given shapes."""
        ids = [str(i) for i in np.asarray(catalog.item_id).tolist()]
        digest = hashlib.sha256("\n".join(ids).encode()).hexdigest()
        kind = "str" if np.asarray(catalog.item_id).dtype.kind not in "iu" else "int"
        return cls(catalog.n_items, int(k), int(dim_context), kind, digest, tuple(ids[:3]),
                   tuple(context_names))

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CatalogStamp:
        """Read what :meth:`to_json` wrote."""
        return cls(int(data["n_items"]), int(data["k"]), int(data["dim_context"]), str(data["id_kind"]),
                   str(data["ids_sha256"]), tuple(str(v) for v in data["first_ids"]),
                   tuple(str(v) for v in data["context_names"]))

    def to_json(self) -> dict[str, Any]:
        """Plain JSON."""
        return dataclasses.asdict(self) | {"first_ids": list(self.first_ids),
                                           "context_names": list(self.context_names)}


def report_path(policy_file: str | Path) -> Path:
    """Where the learn report of a policy file lives: ``POLICY.json`` beside ``POLICY.npz``."""
    return Path(policy_file).with_suffix(".json")


def read_stamp(policy_file: str | Path) -> CatalogStamp | None:
    """The stamp in the learn report beside ``policy_file``, or None when there is no report."""
    path = report_path(policy_file)
    if not path.is_file():
        return None
    data = json.loads(path.read_text())
    stamp = data.get("stamp") if isinstance(data, dict) else None
    return CatalogStamp.from_json(stamp) if isinstance(stamp, dict) else None


def stamp_mismatch(learned: CatalogStamp, served: CatalogStamp) -> str | None:
    """What differs between the catalog/context a policy learned on and the one served, or None."""
    if learned.n_items != served.n_items:
        return f"it was learned on {learned.n_items} items, the service has {served.n_items}"
    if learned.ids_sha256 != served.ids_sha256:
        return (f"it was learned on a catalog whose item ids (first {list(learned.first_ids)}) differ from "
                f"the served catalog's (first {list(served.first_ids)}) or are in another order")
    if learned.k != served.k:
        return f"it was learned for slates of k={learned.k}, the service shows k={served.k}"
    if learned.dim_context != served.dim_context:
        return (f"it was learned on context width d={learned.dim_context}, the service takes "
                f"d={served.dim_context}")
    if learned.context_names and served.context_names and learned.context_names != served.context_names:
        pairs = zip(learned.context_names, served.context_names, strict=True)
        diff = next(i for i, (a, b) in enumerate(pairs) if a != b)
        return (f"its context column {diff} is {learned.context_names[diff]!r}, the service's is "
                f"{served.context_names[diff]!r}")
    return None
