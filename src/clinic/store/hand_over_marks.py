"""Each API process's hand-over mark (see ``clinic.domain.hand_overs``)."""

from clinic.clock import utcnow
from clinic.store.documents import HandOverMark


async def record(process: str, through: int) -> None:
    """Record that every request ``process`` numbered up to ``through`` reached the broker."""
    await HandOverMark.get_pymongo_collection().update_one(
        {"_id": process},
        {"$max": {"through": through}, "$set": {"recorded_at": utcnow()}},
        upsert=True,
    )


async def get(process: str) -> int | None:
    """The mark ``process`` recorded last, or None if it recorded none (or long ago)."""
    raw = await HandOverMark.get_pymongo_collection().find_one({"_id": process})
    return None if raw is None else int(raw["through"])
