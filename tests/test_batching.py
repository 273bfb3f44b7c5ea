"""Calls that share a database round trip still fail on their own."""

import asyncio

from clinic.store.batching import Batched


async def test_each_caller_of_a_failed_batch_gets_an_error_of_its_own() -> None:
    async def database_down(items: list[int]) -> list[int | BaseException]:
        raise ConnectionError("the database is down")

    batched: Batched[int, int] = Batched(database_down)
    failures: dict[str, BaseException] = {}

    async def retry_after_an_earlier_failure() -> None:
        try:
            raise TimeoutError("an earlier attempt")
        except TimeoutError:
            try:
                await batched.run(1)  # raised while handling the earlier error
            except ConnectionError as failure:
                failures["retried"] = failure

    async def first_attempt() -> None:
        try:
            await batched.run(2)
        except ConnectionError as failure:
            failures["first"] = failure

    await asyncio.gather(retry_after_an_earlier_failure(), first_attempt())

    retried, first = failures["retried"], failures["first"]
    assert isinstance(retried.__context__, TimeoutError)
    # The first attempt's log must not show the other caller's earlier error as its cause.
    assert first.__context__ is None, "one caller's handling changed another's error"
    assert str(first) == "the database is down"
    assert first.__traceback__ is not None
