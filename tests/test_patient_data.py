"""A patient's data: exported whole, erased everywhere, removed after retention."""

import json
import subprocess
from datetime import timedelta

import aio_pika
import pytest

from clinic.clock import utcnow
from clinic.domain.patient_data import erase, export
from clinic.domain.retention import anonymise_due
from clinic.messages import BookingStatus
from clinic.messaging.retries import PARKED_FROM_HEADER
from clinic.messaging.topology import PARKED
from clinic.settings import settings
from clinic.store import patients, slots
from clinic.store.documents import Booking, IdempotencyKey, OutboxRecord, SlotClaim
from clinic.store.idempotency import claim_key
from tests.conftest import BIN
from tests.integration import parked_messages

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("clean_db")]


async def booking(email: str, days: float, status: BookingStatus, name: str) -> Booking:
    when = (utcnow() + timedelta(days=days)).replace(second=0, microsecond=0)
    stored = Booking(
        patient_name=name,
        patient_email=email,
        date=when,
        status=status,
        doctor_id="dr-test",
        manage_token_digest="0" * 64,
    )
    await stored.insert()
    if status in {BookingStatus.PENDING, BookingStatus.CONFIRMED}:
        await slots.claim("dr-test", when, stored.id)
    await claim_key(f"key-{stored.id}", "fingerprint", stored.id)
    return stored


async def park(channel: aio_pika.abc.AbstractChannel, booking_id: str) -> None:
    await channel.default_exchange.publish(
        aio_pika.Message(
            json.dumps({"bookingId": booking_id}).encode(),
            correlation_id=booking_id,
            message_id=f"parked-{booking_id}",
            headers={PARKED_FROM_HEADER: "booking_requests"},
        ),
        routing_key=PARKED.name,
    )


@pytest.fixture
async def juan(rabbit: aio_pika.abc.AbstractChannel) -> list[Booking]:
    """Juan's bookings, made with his address written three ways, one of them parked."""
    his = [
        await booking("juan.perez@gmail.com", -30, BookingStatus.CONFIRMED, "Juan Pérez"),
        await booking("Juan.Perez+clinic@GMail.com", 5, BookingStatus.CONFIRMED, "Juan Pérez"),
        await booking("JUANPEREZ@googlemail.com", 9, BookingStatus.PENDING, "Juan Pérez"),
    ]
    await park(rabbit, his[2].id)
    return his


@pytest.fixture
async def ana(rabbit: aio_pika.abc.AbstractChannel) -> Booking:
    """Someone else's booking, parked too: untouched by anything done about Juan."""
    hers = await booking("ana@example.com", 7, BookingStatus.CONFIRMED, "Ana Ruiz")
    await park(rabbit, hers.id)
    return hers


async def test_an_export_holds_everything_about_the_patient_and_no_one_else(
    juan: list[Booking], ana: Booking
) -> None:
    data = await export("juan.perez@gmail.com")

    assert sorted(b["id"] for b in data["bookings"]) == sorted(b.id for b in juan)
    assert {b["patient_email"] for b in data["bookings"]} == {
        "juan.perez@gmail.com",
        "Juan.Perez+clinic@GMail.com",
        "JUANPEREZ@googlemail.com",
    }
    assert len(data["slot_claims"]) == 3
    assert len(data["idempotency_keys"]) == 3
    assert [m["booking_id"] for m in data["parkedMessages"]] == [juan[2].id]
    text = json.dumps(data, default=str)
    assert ana.id not in text
    assert "Ana" not in text
    assert "manage_token_digest" not in text


async def test_erasure_cancels_what_is_to_come_and_leaves_no_trace_of_the_patient(
    juan: list[Booking], ana: Booking, rabbit: aio_pika.abc.AbstractChannel
) -> None:
    erased = await erase("JUAN.PEREZ+whatever@gmail.com")

    assert erased.bookings == 3
    assert sorted(erased.cancelled) == sorted(b.id for b in juan[1:])
    assert erased.parked_messages == 1
    for before in juan:
        after = await Booking.get(before.id)
        assert after is not None
        assert "juan" not in after.model_dump_json().lower()
        assert after.manage_token_digest is None
        assert after.personal_data_removed_at is not None
    past = await Booking.get(juan[0].id)
    assert past is not None
    assert past.status is BookingStatus.CONFIRMED  # a past appointment stays what it was
    # The slots of the cancelled appointments are free for others.
    assert {c.booking_id for c in await SlotClaim.find_all().to_list()} == {juan[0].id, ana.id}
    assert {k.booking_id for k in await IdempotencyKey.find_all().to_list()} == {ana.id}
    # The cancellations are recorded for the relay to announce.
    cancelled = OutboxRecord.find(OutboxRecord.status == BookingStatus.CANCELLED)
    assert {r.booking_id for r in await cancelled.to_list()} == set(erased.cancelled)
    assert [m.correlation_id for m in await parked_messages(rabbit)] == [ana.id]
    assert (await export("juan.perez@gmail.com"))["bookings"] == []
    untouched = await Booking.get(ana.id)
    assert untouched is not None
    assert untouched.patient_email == "ana@example.com"


async def test_bookings_past_retention_name_no_one(
    juan: list[Booking], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(settings, "retention_days", 20)

    removed, _ = await anonymise_due()

    assert removed == 1
    old = await Booking.get(juan[0].id)
    assert old is not None
    assert (old.patient_name, old.patient_email) == ("", "")
    for kept in juan[1:]:
        current = await Booking.get(kept.id)
        assert current is not None
        assert current.patient_name == "Juan Pérez"
    assert (await anonymise_due())[0] == 0


def clinic(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / "clinic"), *args], capture_output=True, text=True, timeout=60)


async def test_the_patient_commands_export_and_erase(juan: list[Booking], ana: Booking) -> None:
    exported = clinic("patient", "export", "juan.perez@gmail.com")
    unconfirmed = clinic("patient", "erase", "juan.perez@gmail.com")
    erased = clinic("patient", "erase", "juan.perez@gmail.com", "--yes")

    assert exported.returncode == 0, exported.stderr
    assert len(json.loads(exported.stdout)["bookings"]) == 3
    assert "juan.perez" not in exported.stderr  # the audit line masks the address
    assert "j***@gmail.com" in exported.stderr
    assert unconfirmed.returncode == 2
    assert "--yes" in unconfirmed.stderr
    assert erased.returncode == 0, erased.stderr
    assert json.loads(erased.stdout)["bookings"] == 3
    assert await Booking.find(Booking.patient_name == "Juan Pérez").count() == 0


async def test_bookings_stored_before_email_keys_are_found_once_keyed(
    rabbit: aio_pika.abc.AbstractChannel,
) -> None:
    older = Booking(patient_name="Juan Pérez", patient_email="Juan@Example.com", date=utcnow())
    document = older.model_dump(by_alias=True, exclude={"patient_email_key"})
    await Booking.get_pymongo_collection().insert_one(document)
    assert (await export("juan@example.com"))["bookings"] == []

    assert await patients.key_older_bookings() == 1

    assert [b["id"] for b in (await export("juan@example.com"))["bookings"]] == [older.id]
    assert await patients.key_older_bookings() == 0
