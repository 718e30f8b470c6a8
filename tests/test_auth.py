"""Minting with the JWT-bearer grant, the token cache, and ServiceAccountAuth as httpx.Auth.

Against the fake Vendasta running under real uvicorn: it verifies each assertion's
signature, header and claims, and counts mints.
"""

from __future__ import annotations

import asyncio
import json
import stat
import time
from pathlib import Path

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.fakes.vendasta import ES256, RS256, RunningFake
from vwh.auth import ServiceAccountAuth, StaticTokenSource, token_source
from vwh.credentials import load_credentials, parse_credentials
from vwh.errors import CredentialsError, ExitCode, UnauthorizedError
from vwh.tokens import (
    AccessToken,
    TokenCache,
    build_assertion,
    normalize_scopes,
    scrub,
    user_info_url,
)

ORDER = "/platform/orders/AG-7PQTGLLXQQ:ORD-S548DKHMKX"


@pytest.fixture
def cache(tmp_path: Path) -> TokenCache:
    return TokenCache(tmp_path / "tokens")


def make_auth(
    vendasta: RunningFake, cache: TokenCache | None, creds: Path = RS256, scopes=("order:read",)
) -> ServiceAccountAuth:
    return ServiceAccountAuth(
        load_credentials(creds), scopes, token_url=vendasta.token_url, cache=cache
    )


@pytest.mark.parametrize("creds", [RS256, ES256])
def test_assertion_header_and_claims(creds: Path) -> None:
    account = load_credentials(creds)
    now = time.time()
    assertion = build_assertion(account, ("order:read", "sales.account"), now)
    header = jwt.get_unverified_header(assertion)
    assert header["alg"] == account.alg
    assert header["kid"] == account.kid
    assert "aud" not in header  # Vendasta's own sample puts it there, wrongly
    public = account.signing_key.public_key()
    claims = jwt.decode(assertion, public, algorithms=[account.alg], audience=account.aud)
    assert claims["iss"] == account.iss
    assert claims["sub"] == account.sub
    assert claims["scope"] == "order:read sales.account"
    assert claims["iat"] == int(now)
    assert 0 < claims["exp"] - claims["iat"] <= 600


@pytest.mark.parametrize("creds", [RS256, ES256])
def test_one_mint_serves_many_requests(
    vendasta: RunningFake, cache: TokenCache, creds: Path
) -> None:
    auth = make_auth(vendasta, cache, creds)
    with httpx.Client(base_url=vendasta.url, auth=auth) as client:
        for _ in range(5):
            assert client.get(ORDER).status_code == 200
    assert vendasta.fake.mints == 1
    assert auth.mints == 1
    assert all(h.startswith("Bearer fake-at-") for h in vendasta.fake.auth_headers)
    assert vendasta.fake.assertions[0]["header"]["alg"] == load_credentials(creds).alg


def test_concurrent_requests_wait_for_one_mint(vendasta: RunningFake, cache: TokenCache) -> None:
    auth = make_auth(vendasta, cache)

    async def many() -> list[int]:
        async with httpx.AsyncClient(base_url=vendasta.url, auth=auth) as client:
            responses = await asyncio.gather(*(client.get(ORDER) for _ in range(20)))
        return [r.status_code for r in responses]

    assert asyncio.run(many()) == [200] * 20
    assert vendasta.fake.mints == 1


def test_the_cache_file_is_private_and_reused_by_the_next_run(
    vendasta: RunningFake, cache: TokenCache
) -> None:
    with httpx.Client(base_url=vendasta.url, auth=make_auth(vendasta, cache)) as client:
        client.get(ORDER).raise_for_status()
    files = list(cache.directory.iterdir())
    assert len(files) == 1
    assert stat.S_IMODE(files[0].stat().st_mode) == 0o600
    assert stat.S_IMODE(cache.directory.stat().st_mode) == 0o700
    saved = json.loads(files[0].read_text())
    assert saved["scopes"] == ["order:read"]
    assert saved["account"] == load_credentials(RS256).client_email
    # A new auth object (as in a new `vwh` run) finds the cached token.
    again = make_auth(vendasta, cache)
    with httpx.Client(base_url=vendasta.url, auth=again) as client:
        client.get(ORDER).raise_for_status()
    assert vendasta.fake.mints == 1
    assert again.current() is not None and again.current().from_cache  # type: ignore[union-attr]


def test_the_cache_is_keyed_by_scopes_account_and_endpoint(
    vendasta: RunningFake, cache: TokenCache
) -> None:
    rs, es = load_credentials(RS256), load_credentials(ES256)
    keys = {
        TokenCache.key(rs, vendasta.token_url, ["order:read"]),
        TokenCache.key(rs, vendasta.token_url, ["order"]),
        TokenCache.key(es, vendasta.token_url, ["order:read"]),
        TokenCache.key(rs, "https://sso-api-demo.apigateway.co/oauth2/token", ["order:read"]),
    }
    assert len(keys) == 4
    assert TokenCache.key(rs, "u", ["a", "b"]) == TokenCache.key(rs, "u", ["b", "a"])


def test_a_corrupt_cache_file_is_ignored(vendasta: RunningFake, cache: TokenCache) -> None:
    auth = make_auth(vendasta, cache)
    cache.directory.mkdir(parents=True)
    cache.path(auth._key).write_text("{not json")
    with httpx.Client(base_url=vendasta.url, auth=auth) as client:
        assert client.get(ORDER).status_code == 200
    assert vendasta.fake.mints == 1


def test_a_new_mint_after_expiry(vendasta: RunningFake, cache: TokenCache) -> None:
    vendasta.fake.token_lifetime = 1  # used for half its life, then replaced
    auth = make_auth(vendasta, cache)
    with httpx.Client(base_url=vendasta.url, auth=auth) as client:
        assert client.get(ORDER).status_code == 200
        assert client.get(ORDER).status_code == 200
        assert vendasta.fake.mints == 1
        time.sleep(0.6)
        assert client.get(ORDER).status_code == 200
    assert vendasta.fake.mints == 2


def test_usable_until_the_margin_before_expiry() -> None:
    token = AccessToken("t", expires_at=1000.0 + 3600, minted_at=1000.0)
    assert token.usable(1000.0 + 3539)
    assert not token.usable(1000.0 + 3541)
    assert AccessToken("t").usable(time.time())  # expiry unknown: a token minted elsewhere


def test_a_revoked_token_is_replaced_once(vendasta: RunningFake, cache: TokenCache) -> None:
    auth = make_auth(vendasta, cache)
    with httpx.Client(base_url=vendasta.url, auth=auth) as client:
        client.get(ORDER).raise_for_status()
        vendasta.fake.revoke_all()
        assert client.get(ORDER).status_code == 200
    assert vendasta.fake.mints == 2


def test_a_fresh_token_refused_is_not_retried_in_a_loop(
    vendasta: RunningFake, cache: TokenCache
) -> None:
    vendasta.fake.token_lifetime = -1  # every token is dead on arrival
    with httpx.Client(base_url=vendasta.url, auth=make_auth(vendasta, cache)) as client:
        assert client.get(ORDER).status_code == 401
    assert vendasta.fake.mints == 1


def test_a_scope_not_granted_is_refused_by_the_token_endpoint(
    vendasta: RunningFake, cache: TokenCache
) -> None:
    vendasta.fake.register(RS256, granted=["sales.account"])
    with (
        httpx.Client(base_url=vendasta.url, auth=make_auth(vendasta, cache)) as client,
        pytest.raises(UnauthorizedError) as err,
    ):
        client.get(ORDER)
    assert (
        "refused the assertion: invalid_scope: scope not granted to this account: order:read"
        in (str(err.value))
    )
    assert err.value.exit_code == ExitCode.UNAUTHORIZED


def test_an_unknown_key_is_refused(vendasta: RunningFake, cache: TokenCache) -> None:
    vendasta.fake.keys.clear()
    auth = make_auth(vendasta, cache)
    with (
        httpx.Client(base_url=vendasta.url, auth=auth) as client,
        pytest.raises(UnauthorizedError, match="invalid_client: unknown key id"),
    ):
        client.get(ORDER)


def test_a_signature_by_another_key_is_refused(vendasta: RunningFake, cache: TokenCache) -> None:
    data = json.loads(RS256.read_text())
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    data["private_key"] = other.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    impostor = ServiceAccountAuth(
        parse_credentials(data), ["order:read"], token_url=vendasta.token_url, cache=cache
    )
    with (
        httpx.Client(base_url=vendasta.url, auth=impostor) as client,
        pytest.raises(UnauthorizedError, match="Signature verification failed"),
    ):
        client.get(ORDER)
    assert vendasta.fake.mints == 0


def test_secrets_stay_out_of_reprs(vendasta: RunningFake, cache: TokenCache) -> None:
    auth = make_auth(vendasta, cache)
    with httpx.Client(base_url=vendasta.url, auth=auth) as client:
        client.get(ORDER).raise_for_status()
    token = auth.current()
    assert token is not None
    assert token.value not in repr(token)
    assert token.value not in repr(auth)
    static = StaticTokenSource("Bearer abcdefghijklmnopqrstuvwxyz")
    assert "abcdefghijklmnopqrstuvwxyz" not in static.description + repr(static.auth(()))


def test_static_token_drops_a_pasted_bearer_prefix() -> None:
    source = StaticTokenSource("Bearer  xyz-token ")
    request = httpx.Request("GET", "http://x/")
    flow = source.auth(()).sync_auth_flow(request)
    assert next(flow).headers["Authorization"] == "Bearer xyz-token"
    with pytest.raises(CredentialsError, match="empty"):
        StaticTokenSource("Bearer ")


def test_token_source_order(isolated_env: Path) -> None:
    assert isinstance(token_source(access_token="t"), StaticTokenSource)
    with pytest.raises(CredentialsError, match="no credentials: give --access-token"):
        token_source()
    directory = isolated_env / ".config/api-gateway"
    directory.mkdir(parents=True)
    (directory / "mine.json").write_text(ES256.read_text())
    source = token_source()
    assert source.env == "demo"
    assert "throwaway-es256" in source.description


def test_helpers() -> None:
    assert normalize_scopes(["order:read sales.account", "order:read,user.admin"]) == (
        "order:read",
        "sales.account",
        "user.admin",
    )
    assert scrub("denied for Authorization: Bearer abc.def.ghi\nnext") == (
        "denied for Authorization: Bearer •••• next"
    )
    assert user_info_url("https://sso-api-prod.apigateway.co/oauth2/token") == (
        "https://sso-api-prod.apigateway.co/oauth2/user-info"
    )
