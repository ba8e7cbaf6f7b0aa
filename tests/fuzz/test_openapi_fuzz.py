"""Property-based fuzzing of the public API from its own OpenAPI document (schemathesis): every operation
/openapi.json lists, so an endpoint added later is fuzzed without touching this file, against the whole
stack as `univence up` runs it (every installed modality, tiny models; tests/test_stack.py's fixture), with
the API key of a premium user who has credits, so valid requests go all the way to the models.

Two checks on every response: no server error (5xx: a client's request, however malformed, is a client
mistake), and every error has the envelope `{"error": {"message", "type", "param", "code"}}`. Bounded for
CI (2 cores): EXAMPLES cases per operation, valid and invalid, derandomized, so every run sends the same
cases and a failure reproduces. Nothing is skipped: an operation schemathesis cannot read fails the test,
and the test fails unless the key got past authentication and requests reached the models."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

from tests.test_stack import RUNNING, cli, stack, wait_serving

__all__ = ["stack"]  # the module-scoped `univence up` fixture this module's tests use
# Cases per operation and mode: about a minute over the whole document on two cores, most of it the valid
# image generations (the tiny model at the sizes asked for); 25 took three minutes.
EXAMPLES = 12
ENVELOPE_FIELDS = {"message", "type", "param", "code"}
# Of each failure's report (the reproducing curl of a fuzzed body can be tens of kilobytes).
REPORT_CHARS = 3000


@pytest.fixture(scope="module", autouse=True)
def _no_rate_limit() -> Iterator[None]:
    """The per-key rate limit off for this module's stack (autouse: set before `stack` starts it), so every
    operation is fuzzed, not answered 429 once the first few used the key's budget."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("UNIVENCE_EDGE_RATE_LIMIT_PER_MINUTE", "0")
        yield


@pytest.fixture(scope="module")
def api_key(stack) -> str:
    """A premium user's key, with credits."""
    cli(stack, "create-user", "fuzz@example.com", "--premium")
    cli(stack, "grant", "fuzz@example.com", "--credits", "100000")
    return cli(stack, "create-key", "fuzz@example.com", "--name", "fuzz")["secret"]


@pytest.fixture(scope="module")
def api(stack, api_key):
    """The running edge's own OpenAPI document, once every modality service is SERVING."""
    for name in RUNNING:
        wait_serving(stack, name)
    return schemathesis.openapi.from_url(f"{stack['base_url']}/openapi.json")


@schemathesis.check
def error_envelope(ctx, response, case) -> None:
    """Every 4xx and 5xx answer is the error envelope, whatever the request was."""
    if response.status_code < 400:
        return
    try:
        body = response.json()
    except ValueError:
        raise AssertionError(f"{response.status_code} without a JSON body: {response.text[:200]!r}") from None
    error = body.get("error") if isinstance(body, dict) else None
    if set(body) != {"error"} or not isinstance(error, dict) or set(error) != ENVELOPE_FIELDS \
            or not error["message"] or not error["type"]:
        raise AssertionError(f"{response.status_code} is not the error envelope: {response.text[:300]!r}")


def fuzz(operation, mode: GenerationMode, api_key: str, statuses: Counter) -> str | None:
    """Sends EXAMPLES cases of one operation in one mode, counting the answers' statuses; what failed (the
    case as sent: shrinking would cost a request per step), or None."""

    @given(case=operation.as_strategy(mode))
    @settings(max_examples=EXAMPLES, derandomize=True, deadline=None, database=None,
              suppress_health_check=list(HealthCheck), phases=[Phase.explicit, Phase.generate])
    def run(case) -> None:
        response = case.call(headers={"X-API-Key": api_key}, timeout=120)
        statuses[response.status_code] += 1
        case.validate_response(response, checks=[not_a_server_error, error_envelope])

    try:
        run()
    except (Exception, BaseExceptionGroup) as failure:  # noqa: BLE001 - collected: one run reports them all
        return f"{operation.label} ({mode.value}): {str(failure)[:REPORT_CHARS]}"
    return None


def test_no_request_gets_a_server_error_and_every_error_is_the_envelope(api, api_key):
    """Every operation, valid (positive) and invalid (negative) cases. schemathesis's pytest loader
    (`from_fixture`) does not run on pytest 9, so this drives Hypothesis itself, one operation at a time."""
    operations = [result.ok() for result in api.get_all_operations()]  # a schema error fails here
    assert len(operations) >= 10, [operation.label for operation in operations]
    statuses: dict[str, Counter] = {operation.label: Counter() for operation in operations}
    failures = [failure for operation in operations for mode in modes(operation)
                if (failure := fuzz(operation, mode, api_key, statuses[operation.label])) is not None]
    assert not failures, "\n\n".join(failures)
    # The key worked and the rate limit stayed off (so every operation got past them), and valid cases went
    # all the way through to a model somewhere.
    assert set(statuses["GET /v1/models"]) == {200}, statuses
    assert not [label for label, counts in statuses.items() if counts[429]], statuses
    succeeded = {label for label, counts in statuses.items() if any(200 <= status < 300 for status in counts)}
    assert {"POST /v1/images/generations", "POST /v1/images/remove-background"} <= succeeded, statuses


def modes(operation) -> list[GenerationMode]:
    """Valid cases for every operation, invalid ones too where there is something to get wrong (an
    operation without parameters or body, GET /healthz, has no invalid request to generate)."""
    negatable = bool(list(operation.iter_parameters())) or bool(operation.body)
    return [GenerationMode.POSITIVE, *([GenerationMode.NEGATIVE] if negatable else [])]
