"""``DELETE /v1/users/<user_id>``: erase one shopper (admin only)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint

from serving.errors import InvalidField
from serving.service import require_admin, service
from serving.validation import MAX_USER_ID, is_clean_text

bp = Blueprint("users", __name__)


@bp.delete("/v1/users/<path:user_id>")
def erase_user(user_id: str) -> tuple[dict[str, Any], int]:
    """Delete every decision, reward and assignment of ``user_id``; answers the counts.

    The id is hashed at once (the store holds only pseudonyms), the erasure is
    recorded in the audit table without it, and exports made afterwards no longer
    contain the shopper. Erasing an unknown id is not an error: it touches 0 rows.
    """
    require_admin()
    if not 0 < len(user_id) <= MAX_USER_ID or not is_clean_text(user_id):
        raise InvalidField("user_id", f"a non-empty string of at most {MAX_USER_ID} valid characters",
                           "an invalid id")
    svc = service()
    removal = svc.store.erase_user(svc.pseudonyms.of(user_id), svc.clock())
    return {"erased": True, "decisions": removal.decisions, "rewards": removal.rewards}, 200
