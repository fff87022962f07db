"""What the service shows: the catalog, the slate length and the context width.

With ``catalog`` set the service serves the shop's catalog file (its own item
ids in every answer) with the configured ``k`` and ``dim_context``. Otherwise,
with ``n_items``, ``k`` and ``dim_context`` left at 0 the service takes them
from the default ground-truth world (``simulator.world.World.default``); where
no world is given (``_default_world`` answers None) the service falls back, with
a logged warning, to an anonymous catalog of :data:`FALLBACK_N_ITEMS` items,
``k = 3`` and an 8-wide context.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from serving.config import ServingConfig
from simulator.errors import ConfigError
from simulator.logs import Catalog

logger = logging.getLogger(__name__)

FALLBACK_N_ITEMS = 80
FALLBACK_K = 3
FALLBACK_DIM_CONTEXT = 8


@dataclass(frozen=True, slots=True)
class ServedShape:
    """The catalog and the shapes every arm's policy is built for.

    Attributes:
        catalog: the items, indexed ``0..n_items-1``.
        k: slate length.
        dim_context: context width ``d``.
        context_names: names of the ``d`` context columns (may be empty).
        source: ``"catalog"`` (a shop's catalog file), ``"world"``, ``"config"`` or ``"fallback"``.
        index_of: external item id (int, or the shop's text id) -> catalog index.
        item_ids: external item id of each catalog index (plain Python values, for answers).
    """

    catalog: Catalog
    k: int
    dim_context: int
    context_names: tuple[str, ...]
    source: str
    index_of: dict[int | str, int]
    item_ids: tuple[int | str, ...] = ()

    @property
    def n_items(self) -> int:
        """Catalog size."""
        return self.catalog.n_items


def _default_world(seed: int) -> Any | None:
    from simulator.world import World  # imported when used: the world is heavier than the service

    return World.default(seed=seed)


def _shop_catalog(path: str) -> Catalog:
    from simulator.logs import LogFormatError, LogValidationError, load_catalog

    try:
        return load_catalog(path)
    except FileNotFoundError:
        raise ConfigError(f"`serving.catalog`: no catalog file at {path}; write one with `slatewise catalog "
                          "import ITEMS.csv --id COL ... -o catalog.parquet`.") from None
    except (LogFormatError, LogValidationError) as err:
        raise ConfigError(f"`serving.catalog` {path}: {err}") from None


def resolve_shape(cfg: ServingConfig) -> ServedShape:
    """Catalog, ``k`` and ``d``: a shop's catalog file, the config, the default world, or the fallback."""
    world = None
    if not cfg.catalog and (cfg.n_items == 0 or cfg.k == 0 or cfg.dim_context == 0):
        world = _default_world(cfg.world_seed)
    if cfg.catalog:
        catalog, source = _shop_catalog(cfg.catalog), "catalog"
    elif cfg.n_items:
        catalog, source = Catalog.anonymous(cfg.n_items), "config"
    elif world is not None:
        catalog, source = world.catalog, "world"
    else:
        logger.warning("simulator.world is not available: serving an anonymous catalog of %d items",
                       FALLBACK_N_ITEMS)
        catalog, source = Catalog.anonymous(FALLBACK_N_ITEMS), "fallback"
    k = cfg.k or (int(world.k) if world is not None else FALLBACK_K)
    dim = cfg.dim_context or (int(world.dim_context) if world is not None else FALLBACK_DIM_CONTEXT)
    names = cfg.context_names
    if not names and world is not None and not cfg.dim_context:
        names = tuple(getattr(world, "context_names", ()) or ())
    if not 1 <= k <= catalog.n_items:
        raise ConfigError(f"`serving.k` must be in [1, n_items={catalog.n_items}], found {k}.")
    if names and len(names) != dim:
        raise ConfigError(f"`serving.context_names` must hold dim_context = {dim} names, "
                          f"found {len(names)}.")
    ids: list[int | str] = catalog.item_id.tolist()  # Python ints, or str for a shop's own ids
    return ServedShape(catalog=catalog, k=k, dim_context=dim, context_names=tuple(names),
                       source=source, index_of={i: n for n, i in enumerate(ids)}, item_ids=tuple(ids))
