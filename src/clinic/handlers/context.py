"""Handler parameters from FastStream's context, resolved on the event loop."""

from typing import Annotated, Any

# The class behind faststream.Context, which FastStream exports only as a factory.
from faststream._internal.context import Context as ContextField
from faststream.rabbit.message import RabbitMessage


class LoopContext(ContextField):
    """``faststream.Context``, resolved without a thread.

    fast_depends runs a custom field's plain ``use`` in a worker thread, once per
    message and parameter; looking a name up in the context needs no thread.
    """

    async def use(self, /, **kwargs: Any) -> dict[str, Any]:  # type: ignore[override]
        resolved: dict[str, Any] = super().use(**kwargs)
        return resolved


Message = Annotated[RabbitMessage, LoopContext("message")]
"""The message being handled."""
