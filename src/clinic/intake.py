"""Storing new bookings: those that arrive together are written in one ``insert_many``.

Each request still waits for its own booking to be written (a 202 always
means stored); it just shares the round trip with the requests that arrived
during the previous write (see ``clinic.batching``).
"""

from clinic.batching import inserts_of
from clinic.models import Booking

booking_inserts = inserts_of(Booking)
"""``await booking_inserts.run(booking)``: True once stored, False if its id is taken."""
