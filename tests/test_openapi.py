"""The OpenAPI document is the contract: the API takes what it allows, and nothing else.

Schemathesis drives the app in process with all of its checks: on data the
document allows, which must be accepted, and on data it forbids, which must get
a 4xx; then along the document's links, in workflows (a booking made, opened
with its manage token, cancelled; a doctor added, read, changed, deactivated).
Valid data may be refused only where the document states the rule
(``tests.contract_rules``). A few hundred examples per operation and a few
hundred workflows, each part within a time budget, so CI can afford it.
"""

import asyncio
import copy
import time
from datetime import timedelta
from pathlib import Path
from typing import Any, ClassVar

import hypothesis
import pytest
import schemathesis
from httpx import AsyncClient
from hypothesis import HealthCheck, Phase, settings
from hypothesis.errors import FlakyStrategyDefinition
from schemathesis import Case
from schemathesis.auths import AuthContext
from schemathesis.checks import CheckFunction
from schemathesis.core.failures import FailureGroup
from schemathesis.core.transport import Response

from clinic.api import app
from clinic.api.seed import seed_doctors
from clinic.clock import utcnow
from clinic.settings import settings as clinic_settings
from clinic.store.documents import DOCUMENT_MODELS
from tests.conftest import STAFF
from tests.contract_rules import ADDED, REPLACED
from tests.in_process import InProcess

pytestmark = pytest.mark.usefixtures("clean_db")

EXAMPLES, OPERATION_SECONDS = 300, 5.0
"""Generated examples per operation (besides the document's own and the edge cases),
and the seconds after which an operation's remaining ones are not sent."""
SCENARIOS, STEPS, WORKFLOW_SECONDS = 200, 8, 30.0
"""Up to this many workflows of up to this many calls, stopped once the seconds are spent."""
MIN_WORKFLOWS = 50
"""Fewer workflows than this in the budget would test too little: a failure."""

# The test doctor takes any whole minute: half the bookings ask for one of these,
# so that workflows have bookings to open and cancel, not only refusals.
BOOKABLE = [
    (utcnow() + timedelta(days=1, minutes=37 * n)).strftime("%Y-%m-%dT%H:%M:00Z") for n in range(40)
]
API = InProcess()
REJECTIONS = [
    "400",
    "401",
    "403",
    "404",
    "405",
    "406",
    "409",
    "413",
    "415",
    "422",
    "428",
    "429",
    "5xx",
]
# A copy: schemathesis adds the links it infers to the document it is given.
schema = schemathesis.openapi.from_dict(
    copy.deepcopy(app.openapi()),
    config=schemathesis.Config.from_dict(
        {
            "generation": {
                "mode": "all",
                "max-examples": EXAMPLES,
                "deterministic": True,
                "database": "none",
            },
            "dictionaries": {"bookable": {"values": BOOKABLE}},
            "parameters": {"body.date": {"dictionary": "bookable", "probability": 0.5}},
            # Schemathesis's own list of rejections (5xx are the not_a_server_error
            # check's to fail), and 413: a body over the documented 16 KiB is refused
            # before it is read, whatever else is wrong with it.
            "checks": {"negative_data_rejection": {"expected-statuses": REJECTIONS}},
        }
    ),
)
schema.app = API
CHECKS: dict[str, Any] = {"additional_checks": ADDED, "excluded_checks": REPLACED}


@schema.auth(refresh_interval=None)
class StaffToken:
    """The staff token on the routes for staff only; the others are called as a patient."""

    def get(self, case: Case[Any], context: AuthContext) -> str | None:
        required = case.operation.definition.raw.get("security")
        return STAFF["Authorization"] if required == [{"staffToken": []}] else None

    def set(self, case: Case[Any], data: str, context: AuthContext) -> None:
        case.headers["Authorization"] = data


STARTED: dict[str, float] = {}
FAILING: set[str] = set()


@schema.parametrize()
@settings(deadline=None, suppress_health_check=list(HealthCheck))
async def test_every_route_keeps_to_its_openapi_document(
    case: Case[Any], client: AsyncClient
) -> None:
    label = case.operation.label
    started = STARTED.setdefault(label, time.monotonic())
    generated = case.meta is not None and case.meta.phase.name.value == "fuzzing"
    # Past the budget, only Hypothesis's replays of a failure still go out, to shrink it.
    if generated and label not in FAILING and time.monotonic() - started > OPERATION_SECONDS:
        return
    API.use(client)
    try:
        await asyncio.to_thread(case.call_and_validate, **CHECKS)
    except BaseException:  # schemathesis's failures are a BaseExceptionGroup
        FAILING.add(label)
        raise


class OutOfTimeError(Exception):
    """The workflows' time budget is spent."""


class Workflows(schema.as_state_machine()):  # type: ignore[misc]
    """Workflows along the document's links, each on a fresh database; failures are kept.

    Kept, not raised: the API has state, so Hypothesis could not replay a workflow
    to shrink it. The test reports every distinct failure at the end.
    """

    failures: ClassVar[dict[tuple[str, str], str]] = {}
    deadline: ClassVar[float] = 0.0
    started: ClassVar[int] = 0

    def setup(self) -> None:
        if time.monotonic() > self.deadline:
            raise OutOfTimeError
        Workflows.started += 1
        asyncio.run_coroutine_threadsafe(fresh_database(), API.loop).result()

    def validate_response(
        self,
        response: Response,
        case: Case[Any],
        additional_checks: list[CheckFunction] | None = None,
        **kwargs: Any,
    ) -> None:
        try:
            case.validate_response(
                response, transport_kwargs=kwargs or None, recorder=self.recorder, **CHECKS
            )
        except FailureGroup as found:
            for failure in found.exceptions:
                self.failures.setdefault((case.operation.label, failure.title), str(found))


async def fresh_database() -> None:
    """Nothing but the seeded doctors, as the ``clean_db`` fixture leaves it."""
    for model in DOCUMENT_MODELS:
        await model.get_pymongo_collection().delete_many({})
    await seed_doctors(Path(clinic_settings.doctors_file))


WORKFLOWS = settings(
    max_examples=SCENARIOS,
    stateful_step_count=STEPS,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
    phases=[Phase.generate],
)


async def test_workflows_keep_to_the_openapi_document(client: AsyncClient) -> None:
    API.use(client)
    Workflows.deadline = time.monotonic() + WORKFLOW_SECONDS
    for seed in range(100):
        try:
            await asyncio.to_thread(hypothesis.seed(seed)(Workflows).run, settings=WORKFLOWS)
            break
        except OutOfTimeError:
            break
        except FlakyStrategyDefinition:
            # A stateful API may answer a replayed step otherwise, and Hypothesis then
            # stops: another seed carries on where this one could not.
            continue
    assert Workflows.started >= MIN_WORKFLOWS, f"only {Workflows.started} workflows ran"
    assert not Workflows.failures, "\n\n".join(Workflows.failures.values())


def operations() -> list[tuple[str, str, dict[str, Any]]]:
    paths = app.openapi()["paths"]
    return [(method, path, op) for path, ops in paths.items() for method, op in ops.items()]


@pytest.mark.parametrize(
    ("method", "path", "operation"), operations(), ids=[f"{m} {p}" for m, p, _ in operations()]
)
def test_every_route_documents_its_errors_and_examples(
    method: str, path: str, operation: dict[str, Any]
) -> None:
    components = app.openapi()["components"]["schemas"]
    assert operation.get("summary"), "no summary"
    errors = [code for code in operation["responses"] if code[0] in "45"]
    if path != "/health":  # liveness answers 200, or nothing at all
        assert errors, "no documented error response"
    for parameter in operation.get("parameters", []):
        assert parameter.get("description"), f"{parameter['name']} has no description"
    if body := operation.get("requestBody"):
        ref = body["content"]["application/json"]["schema"]["$ref"]
        assert components[ref.rsplit("/", 1)[-1]].get("examples"), "the body has no example"
        assert "413" in operation["responses"], "the 16 KiB limit is not documented"
