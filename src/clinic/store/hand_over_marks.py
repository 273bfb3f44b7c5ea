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


async def get_many(processes: set[str]) -> dict[str, int]:
    """The marks these processes recorded last, by process (one read for all of them)."""
    if not processes:
        return {}
    found = HandOverMark.get_pymongo_collection().find({"_id": {"$in": sorted(processes)}})
    return {raw["_id"]: int(raw["through"]) async for raw in found}
