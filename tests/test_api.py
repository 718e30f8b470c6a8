"""VendastaClient against the fake Vendasta: records, ids, retries and every failure."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest

from tests.fakes.vendasta import ES256, RS256, RunningFake
from tests.helpers import FIXTURES, free_port
from vwh.api import API_URLS, Failure, Record, VendastaClient, api_base_url
from vwh.api_errors import errors_text, retry_after
from vwh.auth import ServiceAccountSource, StaticTokenSource, TokenSource
from vwh.credentials import load_credentials
from vwh.errors import ExitCode, UsageError, VwhError
from vwh.record_kinds import KINDS, infer_kind, kind_named, records_in_body, targets_from_args
from vwh.tokens import TokenCache

ORDER_ID = "AG-7PQTGLLXQQ:ORD-S548DKHMKX"
FIXTURE_DOCS = {
    path.stem: json.loads(path.read_text()) for path in sorted((FIXTURES / "api").glob("*.json"))
}


@pytest.fixture
def source(vendasta: RunningFake, tmp_path: Any) -> ServiceAccountSource:
    return ServiceAccountSource(
        load_credentials(RS256),
        token_url=vendasta.token_url,
        cache=TokenCache(tmp_path / "tokens"),
    )


def run(source: TokenSource, base_url: str, call: Any, **options: Any) -> Any:
    """Run `call(api)` inside a client; fast backoff unless a test asks otherwise."""
    options.setdefault("backoff", 0.01)

    async def go() -> Any:
        async with VendastaClient(source, base_url=base_url, **options) as api:
            return await call(api)

    return asyncio.run(go())


def fetch(source: TokenSource, base_url: str, kind: str, record_id: str, **options: Any) -> Record:
    return run(source, base_url, lambda api: api.fetch(KINDS[kind], record_id), **options)


def error_of(source: TokenSource, base_url: str, kind: str, record_id: str, **kw: Any) -> VwhError:
    with pytest.raises(VwhError) as err:
        fetch(source, base_url, kind, record_id, **kw)
    return err.value


@pytest.mark.parametrize("kind", sorted(FIXTURE_DOCS))
def test_every_kind_of_id_round_trips(
    vendasta: RunningFake, source: ServiceAccountSource, kind: str
) -> None:
    expected = FIXTURE_DOCS[kind]
    record_id = expected["data"]["id"]
    record = fetch(source, vendasta.base_url, kind, record_id)
    assert record.document == expected
    assert record.kind is KINDS[kind]
    assert vendasta.fake.raw_paths == [f"/platform/{KINDS[kind].collection}/{record_id}"]


def test_an_order_ids_colon_reaches_the_server_intact(
    vendasta: RunningFake, source: ServiceAccountSource
) -> None:
    fetch(source, vendasta.base_url, "order", ORDER_ID)
    assert vendasta.fake.raw_paths == ["/platform/orders/AG-7PQTGLLXQQ:ORD-S548DKHMKX"]


def test_other_reserved_characters_are_escaped_but_not_the_colon() -> None:
    assert KINDS["order"].path("AG-1:ORD-2") == "/orders/AG-1:ORD-2"
    assert KINDS["user"].path("U-a/b?c#d e") == "/users/U-a%2Fb%3Fc%23d%20e"


def test_sparse_fieldset(vendasta: RunningFake, source: ServiceAccountSource) -> None:
    record = run(
        source,
        vendasta.base_url,
        lambda api: api.fetch(
            KINDS["user"], FIXTURE_DOCS["user"]["data"]["id"], ["email", "displayName"]
        ),
    )
    assert set(record.document["data"]["attributes"]) == {"email", "displayName"}
    assert "fields%5Busers%5D=email%2CdisplayName" in record.url


def test_many_fetches_concurrently_with_one_mint_per_scope(
    vendasta: RunningFake, source: ServiceAccountSource
) -> None:
    items = [(KINDS["order"], ORDER_ID)] * 8 + [(KINDS["account"], "AG-7PQTGLLXQQ")] * 4
    results = run(source, vendasta.base_url, lambda api: api.fetch_many(items))
    assert all(isinstance(r, Record) for r in results)
    assert vendasta.fake.mints == 2  # order:read, sales.account
    scopes = sorted(a["claims"]["scope"] for a in vendasta.fake.assertions)
    assert scopes == ["order:read", "sales.account"]


def test_fetch_many_keeps_failures_apart(
    vendasta: RunningFake, source: ServiceAccountSource
) -> None:
    items = [(KINDS["order"], ORDER_ID), (KINDS["automation"], "Automation-missing")]
    ok, failed = run(source, vendasta.base_url, lambda api: api.fetch_many(items))
    assert isinstance(ok, Record)
    assert isinstance(failed, Failure)
    assert failed.error.exit_code == ExitCode.NOT_FOUND


def test_scope_override(vendasta: RunningFake, source: ServiceAccountSource) -> None:
    fetch(source, vendasta.base_url, "order", ORDER_ID, scopes=["order"])
    assert vendasta.fake.assertions[0]["claims"]["scope"] == "order"


def test_401_the_token_was_not_accepted(vendasta: RunningFake) -> None:
    bogus = "not-a-token-the-fake-issued-0123456789"
    err = error_of(StaticTokenSource(bogus), vendasta.base_url, "order", ORDER_ID)
    assert err.exit_code == ExitCode.UNAUTHORIZED
    assert str(err) == (
        f"127.0.0.1:{vendasta.url.rsplit(':', 1)[1]} did not accept the access token"
        " (expired or revoked? minted for the other environment?)"
        " [Unauthorized: the access token is not valid]"
    )
    assert bogus not in str(err)


def test_401_names_an_environment_mismatch(vendasta: RunningFake) -> None:
    es = ServiceAccountSource(load_credentials(ES256), token_url=vendasta.token_url)
    vendasta.fake.token_lifetime = -1  # refused whatever happens
    err = error_of(es, vendasta.base_url, "order", ORDER_ID, env="prod")
    assert "the credentials are for demo but the API is prod's: try --env demo" in str(err)


def test_403_names_the_scope(vendasta: RunningFake) -> None:
    token = vendasta.fake.issue_token(["sales.account"])
    err = error_of(StaticTokenSource(token), vendasta.base_url, "order", ORDER_ID)
    assert err.exit_code == ExitCode.FORBIDDEN
    assert "lacks the scope to read orders: one of order:read, order" in str(err)
    assert "[Forbidden: the token needs one of these scopes: order, order:read]" in str(err)
    assert token not in str(err)


def test_404_points_at_the_other_environment(
    vendasta: RunningFake, source: ServiceAccountSource
) -> None:
    err = error_of(source, vendasta.base_url, "order", "AG-1:ORD-NOPE", env="prod")
    assert err.exit_code == ExitCode.NOT_FOUND
    assert str(err).startswith("no order AG-1:ORD-NOPE in prod; it may be in demo (try --env demo)")
    err = error_of(source, vendasta.base_url, "user", "U-nope")
    assert str(err).startswith(f"no user U-nope at {vendasta.base_url} [Not Found:")


def test_429_then_ok_honours_retry_after(
    vendasta: RunningFake, source: ServiceAccountSource
) -> None:
    vendasta.fake.fail_next((429, {"Retry-After": "1"}))
    started = time.monotonic()
    record = fetch(source, vendasta.base_url, "order", ORDER_ID, backoff=0.001)
    assert time.monotonic() - started >= 1.0
    assert record.document == FIXTURE_DOCS["order"]
    assert len(vendasta.fake.raw_paths) == 2


def test_5xx_retried_with_backoff_then_gave_up(
    vendasta: RunningFake, source: ServiceAccountSource
) -> None:
    vendasta.fake.fail_next(503, 503, 503, 503, 503)
    started = time.monotonic()
    err = error_of(source, vendasta.base_url, "order", ORDER_ID, retries=3, backoff=0.05)
    assert time.monotonic() - started >= 0.05 + 0.1 + 0.2
    assert err.exit_code == ExitCode.GAVE_UP
    assert "answered 503 Service Unavailable 4 times; gave up [Scripted 503:" in str(err)
    assert len(vendasta.fake.raw_paths) == 4


def test_a_retry_after_beyond_the_limit_gives_up_at_once(
    vendasta: RunningFake, source: ServiceAccountSource
) -> None:
    vendasta.fake.fail_next((429, {"Retry-After": "120"}))
    err = error_of(source, vendasta.base_url, "order", ORDER_ID)
    assert "asked to retry after 120 s; gave up (try again later)" in str(err)
    assert len(vendasta.fake.raw_paths) == 1


def test_unreachable_names_the_host_and_why(source: ServiceAccountSource) -> None:
    port = free_port()  # nothing listens there
    err = error_of(source, f"http://127.0.0.1:{port}/platform", "order", ORDER_ID)
    assert err.exit_code == ExitCode.UNREACHABLE
    assert str(err).startswith(f"could not reach 127.0.0.1:{port}: ")
    assert "refused" in str(err).lower() or "failed" in str(err).lower()


def test_an_unreachable_token_endpoint(vendasta: RunningFake) -> None:
    port = free_port()
    dead = ServiceAccountSource(
        load_credentials(RS256), token_url=f"http://127.0.0.1:{port}/oauth2/token"
    )
    err = error_of(dead, vendasta.base_url, "order", ORDER_ID)
    assert str(err).startswith(f"could not reach 127.0.0.1:{port}: ")


def test_a_slow_server_times_out(vendasta: RunningFake, source: ServiceAccountSource) -> None:
    vendasta.fake.delay = 0.5
    err = error_of(source, vendasta.base_url, "order", ORDER_ID, timeout=0.2)
    assert err.exit_code == ExitCode.TIMEOUT
    assert str(err).endswith("did not answer within 0.2 s")


def test_a_slow_token_endpoint_times_out(
    vendasta: RunningFake, source: ServiceAccountSource
) -> None:
    vendasta.fake.token_delay = 0.5
    err = error_of(source, vendasta.base_url, "order", ORDER_ID, timeout=0.2)
    assert err.exit_code == ExitCode.TIMEOUT
    assert str(err) == f"{vendasta.url.removeprefix('http://')} did not answer within 0.2 s"


def test_user_info(vendasta: RunningFake, source: ServiceAccountSource) -> None:
    info = run(source, vendasta.base_url, lambda api: api.user_info(vendasta.user_info_url, []))
    assert info["sub"] == load_credentials(RS256).sub
    assert vendasta.fake.assertions[0]["claims"]["scope"] == "profile email"


def test_api_base_url() -> None:
    assert api_base_url(None, None, None) == (API_URLS["prod"], "prod")
    assert api_base_url(None, None, "demo") == (API_URLS["demo"], "demo")
    assert api_base_url("prod", None, "demo") == (API_URLS["prod"], "prod")
    assert api_base_url("demo", "http://127.0.0.1:9/platform/", None) == (
        "http://127.0.0.1:9/platform",
        None,
    )
    assert api_base_url(None, API_URLS["demo"], None) == (API_URLS["demo"], "demo")
    with pytest.raises(UsageError):
        api_base_url(None, "ftp://example.com", None)


def test_kinds_from_names_ids_and_bodies() -> None:
    assert kind_named("Orders") is KINDS["order"]
    assert kind_named("salesAccounts") is KINDS["account"]
    assert kind_named("businessLocations") is KINDS["business"]
    assert kind_named("nope") is None
    assert infer_kind(ORDER_ID) is KINDS["order"]
    assert infer_kind("U-a6d23f70-fd09-43d2-91d2-a12c032caaa1") is KINDS["user"]
    assert infer_kind("Automation-7a416085") is KINDS["automation"]
    assert infer_kind("AG-7PQTGLLXQQ") is KINDS["account"]
    assert infer_kind("9YW9") is None
    body = json.loads((FIXTURES / "payloads/order.json").read_text())
    assert [(k.name, i) for k, i in records_in_body(body)] == [
        ("order", ORDER_ID),
        ("account", "AG-7PQTGLLXQQ"),
        ("automation", "Automation-7a416085-5668-467c-98ad-f903ad1c4187"),
    ]
    assert [(k.name, i, g) for k, i, g in targets_from_args(["business", "AG-1", "AG-2"])] == [
        ("business", "AG-1", False),
        ("business", "AG-2", False),
    ]
    assert [(k.name, g) for k, _, g in targets_from_args([ORDER_ID])] == [("order", True)]
    with pytest.raises(UsageError, match="cannot tell what kind of record '9YW9' is"):
        targets_from_args(["9YW9"])
    with pytest.raises(UsageError, match=r"which order\? give its id"):
        targets_from_args(["order"])


def test_retry_after_and_errors_text() -> None:
    assert retry_after("3") == 3.0
    assert retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0) == 10.0
    assert retry_after("soon") is None
    assert retry_after(None) is None
    body = {"errors": [{"title": "Forbidden", "detail": "needs order"}, {"title": "Also"}]}
    assert errors_text(body) == "Forbidden: needs order; Also"
    assert errors_text({"data": {}}) == ""
