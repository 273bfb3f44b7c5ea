"""The clinic's rules: deciding bookings, scheduling, cancelling, and what must be sent."""
