"""The OpenAPI document tells the truth: schemathesis calls every route with what it allows.

Bounded: a few examples per operation, positive data only (valid per the
document), so it runs in seconds. Any 5xx, undocumented status code or
response that breaks the documented schema fails the test.
"""

from typing import Any

import pytest
import schemathesis
from httpx import AsyncClient
from hypothesis import HealthCheck, settings
from schemathesis import GenerationMode
from schemathesis.checks import (
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from clinic.api import app
from tests.conftest import STAFF

pytestmark = pytest.mark.usefixtures("clean_db")

# Loaded from the document, not from the app: the test drives the app itself,
# in the test session's event loop, through the `client` fixture.
schema = schemathesis.openapi.from_dict(app.openapi())
schema.config.generation.update(modes=[GenerationMode.POSITIVE])
CHECKS = [not_a_server_error, status_code_conformance, response_schema_conformance]


@schema.parametrize()
@settings(max_examples=12, deadline=None, database=None, suppress_health_check=list(HealthCheck))
async def test_every_route_keeps_to_its_openapi_document(case: Any, client: AsyncClient) -> None:
    request = case.as_transport_kwargs(base_url="http://clinic", headers=STAFF)
    request.pop("cookies", None)
    response = await client.request(**request)
    case.validate_response(response, checks=CHECKS)


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
