"""Schemathesis checks, narrowed to let through only what the OpenAPI document states.

Each wraps one of schemathesis's own checks and passes a failure of it only
where the document says the API answers so on purpose; anything else fails as
the original check would.
"""

import re
from typing import Any

from schemathesis import Case
from schemathesis.checks import (
    CheckContext,
    CheckFunction,
    ignored_auth,
    positive_data_acceptance,
    use_after_free,
)
from schemathesis.core.transport import Response
from schemathesis.openapi.checks import (
    AuthScenario,
    IgnoredAuth,
    RejectedPositiveData,
    UseAfterFree,
)

KEPT = "stays, readable at its URL"
"""What the document says of a DELETE that keeps its resource (a deactivated doctor)."""
HIDDEN = "opens with this token"
"""What the document says of the 404 for a manage token that does not open the booking."""


def _described(operation: dict[str, Any], status: int | None = None) -> str | None:
    """The operation's description, or its answer's with ``status``; whitespace folded."""
    found = operation if status is None else operation["responses"].get(str(status))
    return None if found is None else " ".join(str(found.get("description", "")).split())


def refused_only_for_documented_rules(
    ctx: CheckContext, response: Response, case: Case[Any]
) -> bool | None:
    """Valid data is accepted, or refused with a status the operation documents (a cursor
    it never gave out), or a 422 whose every problem type its 422 answer names as a rule."""
    try:
        return positive_data_acceptance(ctx, response, case)  # type: ignore[no-any-return]
    except RejectedPositiveData:
        described = _described(case.operation.definition.raw, response.status_code)
        if described is None:
            raise
        if response.status_code == 422:
            rules = set(re.findall(r"`([a-z_]+)`", described))
            if not {problem["type"] for problem in response.json()["detail"]} <= rules:
                raise
        return None


def auth_enforced(ctx: CheckContext, response: Response, case: Case[Any]) -> bool | None:
    """A declared token is enforced; a manage token that opens nothing gets the documented
    404, which tells no one whether the booking exists, instead of a 401 or 403."""
    try:
        return ignored_auth(ctx, response, case)  # type: ignore[no-any-return]
    except IgnoredAuth as failure:
        hidden = HIDDEN in (_described(case.operation.definition.raw, 404) or "")
        refused = "got `404" in (failure.message or "")
        if not (failure.scenario is AuthScenario.INVALID_AUTH and refused and hidden):
            raise
        return None


def deleted_means_deleted(ctx: CheckContext, response: Response, case: Case[Any]) -> bool | None:
    """A deleted resource is gone, unless the DELETE's document says that it stays."""
    try:
        return use_after_free(ctx, response, case)  # type: ignore[no-any-return]
    except UseAfterFree as failure:
        method, path = (failure.operation or "").split(" ", 1)
        deleted = case.operation.schema[path][method].definition.raw
        if KEPT not in (_described(deleted) or ""):
            raise
        return None


ADDED: list[CheckFunction] = [
    refused_only_for_documented_rules,
    auth_enforced,
    deleted_means_deleted,
]
REPLACED: list[CheckFunction] = [positive_data_acceptance, ignored_auth, use_after_free]
"""Schemathesis's checks that ``ADDED`` stand in for; every other one of its checks runs."""
