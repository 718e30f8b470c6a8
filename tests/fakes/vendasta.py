"""A fake Vendasta: the SSO token and user-info endpoints, and the Platform API.

It checks what the real services check, so a test that passes against it exercises
vwh's real minting and fetching: the assertion's signature against the public key
registered for its `kid`, the `alg`, the `aud`/`iss`/`sub`/`iat`/`exp`/`scope`
claims (exp at most 10 minutes after iat), the Bearer header, and the scope the
token was minted with. It counts mints, keeps the raw paths it received (an order
id's colon must arrive as a literal ':'), and can be scripted to answer 429/503 or
to be slow. `POST /automationRuns` starts a run as Vendasta does: 202, then, for an
automation given a webhook step (`webhook_step`), the delivery that step sends.

Written from Vendasta's published spec, independently of vwh's own tables.
"""

from __future__ import annotations

import asyncio
import functools
import json
import re
import secrets
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx
import jwt
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.helpers import FIXTURES, ThreadedServer

GRANT_TYPE = "urn:ietf:params:oauth:grant-type:jwt-bearer"
MAX_ASSERTION_LIFETIME = 600
JSONAPI = "application/vnd.api+json"

# Scopes the spec accepts per collection (any one).
ACCEPTED_SCOPES: dict[str, set[str]] = {
    "orders": {"order", "order:read"},
    "salesAccounts": {"sales.account"},
    "businessLocations": {"business", "business:read"},
    "users": {
        "user.admin",
        "user.profile:read",
        "user.contact:read",
        "user.permission:read",
        "user.permission",
        "self.user.admin",
        "self.user.contact:read",
        "openid",
        "profile",
        "email",
        "phone",
        "address",
    },
    "automations": {"automation:read"},
    "automationRuns": {"business"},
}
USER_INFO_SCOPES = {"openid", "profile", "email"}


@dataclass
class RegisteredKey:
    alg: str
    public_key: Any
    aud: str
    iss: str
    sub: str
    email: str
    granted: set[str] | None = None  # None: any scope may be asked for


@dataclass
class Issued:
    sub: str
    email: str
    scopes: set[str]
    expires_at: float


@dataclass
class WebhookStep:
    """An automation's "Trigger a webhook" step: where it POSTs and the token it carries."""

    url: str
    token: str
    token_header: str = "Verifier-Token"
    pause: float = 0.3  # Vendasta runs the automation first: the webhook comes shortly after


@dataclass
class FakeVendasta:
    token_lifetime: float = 3600
    keys: dict[str, RegisteredKey] = field(default_factory=dict)
    tokens: dict[str, Issued] = field(default_factory=dict)
    records: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    mints: int = 0
    assertions: list[dict[str, Any]] = field(default_factory=list)  # verified claims
    raw_paths: list[str] = field(default_factory=list)
    auth_headers: list[str] = field(default_factory=list)
    script: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    delay: float = 0.0  # seconds before each API answer
    token_delay: float = 0.0  # seconds before each token answer
    runs: list[dict[str, Any]] = field(default_factory=list)  # accepted run bodies
    webhook_steps: dict[str, WebhookStep] = field(default_factory=dict)  # per automation id
    delivered: list[tuple[dict[str, Any], int | str]] = field(default_factory=list)
    _sending: set[asyncio.Task[None]] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.load_records(FIXTURES / "api")
        self.load_records(FIXTURES / "api/more")  # beyond one record per kind

    # ---- set-up -------------------------------------------------------------
    def load_records(self, directory: Path) -> None:
        for path in sorted(directory.glob("*.json")):
            doc = json.loads(path.read_text())
            self.records[(doc["data"]["type"], doc["data"]["id"])] = doc

    def register(self, credentials: Path | dict[str, Any], granted: Iterable[str] | None = None):
        """Register a service account's public key, as Partner Center does on creation."""
        data = json.loads(credentials.read_text()) if isinstance(credentials, Path) else credentials
        header, claims = data["assertionHeaderData"], data["assertionPayloadData"]
        self.keys[header["kid"]] = RegisteredKey(
            alg=header["alg"],
            public_key=_public_key(data["private_key"]),
            aud=claims["aud"],
            iss=claims["iss"],
            sub=claims["sub"],
            email=data.get("client_email", claims["sub"]),
            granted=set(granted) if granted is not None else None,
        )

    def issue_token(self, scopes: Iterable[str], lifetime: float | None = None) -> str:
        """A token minted 'elsewhere', for --access-token tests."""
        value = "fake-at-" + secrets.token_urlsafe(24)
        life = self.token_lifetime if lifetime is None else lifetime
        self.tokens[value] = Issued(
            "elsewhere", "elsewhere@example.com", set(scopes), time.time() + life
        )
        return value

    def revoke_all(self) -> None:
        self.tokens.clear()

    def fail_next(self, *answers: int | tuple[int, dict[str, str]]) -> None:
        """Answer the next API calls with these statuses (and headers) before normal service."""
        for a in answers:
            self.script.append(a if isinstance(a, tuple) else (a, {}))

    def webhook_step(self, automation_id: str, url: str, token: str, **kw: Any) -> None:
        """Give an automation a webhook step, as a partner does in the automation builder."""
        self.webhook_steps[automation_id] = WebhookStep(url, token, **kw)

    def reset(self) -> None:
        self.token_lifetime = 3600
        self.keys.clear()
        self.tokens.clear()
        self.records.clear()
        self.load_records(FIXTURES / "api")
        self.load_records(FIXTURES / "api/more")  # beyond one record per kind
        self.mints = 0
        self.assertions.clear()
        self.raw_paths.clear()
        self.auth_headers.clear()
        self.script.clear()
        self.delay = 0.0
        self.token_delay = 0.0
        self.runs.clear()
        self.webhook_steps.clear()
        self.delivered.clear()

    # ---- the app ------------------------------------------------------------
    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/oauth2/token", self._token, methods=["POST"]),
                Route("/oauth2/user-info", self._user_info, methods=["GET"]),
                Route("/platform/automationRuns", self._automation_run, methods=["POST"]),
                Route("/platform/{collection}/{record_id}", self._record, methods=["GET"]),
            ]
        )

    async def _token(self, request: Request) -> Response:
        if self.token_delay:
            await asyncio.sleep(self.token_delay)
        if (
            request.headers.get("content-type", "").split(";")[0]
            != "application/x-www-form-urlencoded"
        ):
            return _oauth(400, "invalid_request", "the body must be form-encoded")
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode()).items()}
        if form.get("grant_type") != GRANT_TYPE:
            return _oauth(400, "unsupported_grant_type", f"grant_type must be {GRANT_TYPE}")
        assertion = form.get("assertion")
        if not assertion:
            return _oauth(400, "invalid_request", "assertion is missing")
        try:
            header = jwt.get_unverified_header(assertion)
        except jwt.PyJWTError:
            return _oauth(400, "invalid_grant", "the assertion is not a JWT")
        key = self.keys.get(str(header.get("kid")))
        if key is None:
            return _oauth(401, "invalid_client", f"unknown key id {header.get('kid')!r}")
        if header.get("alg") != key.alg:
            return _oauth(400, "invalid_grant", f"alg must be {key.alg}")
        if "aud" in header:
            return _oauth(400, "invalid_grant", "aud belongs in the claims, not the header")
        try:
            claims = jwt.decode(
                assertion,
                key.public_key,
                algorithms=[key.alg],
                audience=key.aud,
                issuer=key.iss,
                options={"require": ["aud", "iss", "sub", "iat", "exp", "scope"]},
                leeway=5,
            )
        except jwt.PyJWTError as exc:
            return _oauth(400, "invalid_grant", f"assertion rejected: {exc}")
        if claims["sub"] != key.sub:
            return _oauth(400, "invalid_grant", "sub does not match the service account")
        if not isinstance(claims["iat"], int) or not isinstance(claims["exp"], int):
            return _oauth(400, "invalid_grant", "iat and exp must be integers")
        if claims["exp"] - claims["iat"] > MAX_ASSERTION_LIFETIME:
            return _oauth(400, "invalid_grant", "exp is more than 10 minutes after iat")
        if claims["iat"] > time.time() + 30:
            return _oauth(400, "invalid_grant", "iat is in the future")
        scopes = set(str(claims["scope"]).split())
        if not scopes:
            return _oauth(400, "invalid_scope", "no scope asked for")
        if key.granted is not None and not scopes <= key.granted:
            missing = " ".join(sorted(scopes - key.granted))
            return _oauth(400, "invalid_scope", f"scope not granted to this account: {missing}")
        self.assertions.append({"header": header, "claims": claims})
        value = "fake-at-" + secrets.token_urlsafe(24)
        self.tokens[value] = Issued(key.sub, key.email, scopes, time.time() + self.token_lifetime)
        self.mints += 1
        return JSONResponse(
            {"access_token": value, "token_type": "Bearer", "expires_in": self.token_lifetime}
        )

    def _bearer(self, request: Request) -> Issued | str:
        header = request.headers.get("authorization", "")
        self.auth_headers.append(header)
        kind, _, value = header.partition(" ")
        if kind != "Bearer" or not value:
            return "a Bearer token is required"
        issued = self.tokens.get(value)
        if issued is None:
            return "the access token is not valid"
        if issued.expires_at <= time.time():
            return "the access token has expired"
        return issued

    async def _user_info(self, request: Request) -> Response:
        issued = self._bearer(request)
        if isinstance(issued, str):
            return _oauth(401, "invalid_token", issued)
        if not issued.scopes & USER_INFO_SCOPES:
            return _oauth(403, "insufficient_scope", "profile or email scope required")
        return JSONResponse(
            {"sub": issued.sub, "email": issued.email, "name": "Fake Service Account"}
        )

    async def _record(self, request: Request) -> Response:
        raw = request.scope.get("raw_path", b"").decode("latin-1")
        self.raw_paths.append(raw)
        if "%3a" in raw.lower():
            return _errors(400, "Bad Request", "the id's ':' arrived percent-encoded")
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.script:
            status, headers = self.script.pop(0)
            return _errors(status, f"Scripted {status}", "scripted by the test", headers)
        issued = self._bearer(request)
        if isinstance(issued, str):
            return _errors(401, "Unauthorized", issued)
        collection = request.path_params["collection"]
        accepted = ACCEPTED_SCOPES.get(collection)
        if accepted is None:
            return _errors(404, "Not Found", f"no such collection {collection}")
        if not issued.scopes & accepted:
            need = ", ".join(sorted(accepted))
            return _errors(403, "Forbidden", f"the token needs one of these scopes: {need}")
        record_id = request.path_params["record_id"]
        doc = self.records.get((collection, record_id))
        if doc is None:
            return _errors(404, "Not Found", f"{collection} {record_id} does not exist")
        fields = request.query_params.get(f"fields[{collection}]")
        if fields is not None:
            keep = set(fields.split(","))
            data = dict(doc["data"])
            data["attributes"] = {k: v for k, v in data["attributes"].items() if k in keep}
            doc = {**doc, "data": data}
        return Response(json.dumps(doc, indent=2), media_type=JSONAPI)

    async def _automation_run(self, request: Request) -> Response:
        """Create automation run: check the token, its scope and the body; 202, then deliver."""
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.script:
            status, headers = self.script.pop(0)
            return _errors(status, f"Scripted {status}", "scripted by the test", headers)
        issued = self._bearer(request)
        if isinstance(issued, str):
            return _errors(401, "Unauthorized", issued)
        if "business" not in issued.scopes:
            return _errors(403, "Forbidden", "the token needs the business scope")
        if request.headers.get("content-type", "").split(";")[0].strip() != JSONAPI:
            return _errors(415, "Unsupported Media Type", f"Content-Type must be {JSONAPI}")
        try:
            body = json.loads(await request.body())
        except ValueError:
            return _errors(400, "Bad Request", "the body is not JSON")
        problem, pointer = _run_problem(body)
        if problem:
            return _errors(422, "Unprocessable Entity", problem, pointer=pointer)
        data = body["data"]
        automation_id = data["relationships"]["automation"]["data"]["id"]
        automation = self.records.get(("automations", automation_id))
        if automation is None:
            return _errors(404, "Not Found", f"automation {automation_id} does not exist")
        entity = data["attributes"]["entityId"]
        wants = automation["data"]["attributes"].get("trigger", "")
        if wants.endswith("-order-trigger") and ":ORD-" not in entity:
            return _errors(
                422,
                "Unprocessable Entity",
                "this automation is triggered for an order: entityId must be an order id",
                pointer="/data/attributes/entityId",
            )
        if wants.endswith("-account-trigger") and (":" in entity or not entity.startswith("AG-")):
            return _errors(
                422,
                "Unprocessable Entity",
                "this automation is triggered for an account: entityId must be an account id",
                pointer="/data/attributes/entityId",
            )
        self.runs.append(body)
        step = self.webhook_steps.get(automation_id)
        if step is not None:
            task = asyncio.get_running_loop().create_task(
                self._deliver(step, self.webhook_body(automation_id, entity))
            )
            self._sending.add(task)
            task.add_done_callback(self._sending.discard)
        return Response(status_code=202)

    def webhook_body(self, automation_id: str, entity: str) -> dict[str, Any]:
        """What the "Trigger a webhook" step sends for this entity: its ids, from the records."""
        account = entity.split(":", 1)[0]
        rels = self.records.get(("salesAccounts", account), {}).get("data", {})
        rels = rels.get("relationships", {})
        body = {
            "accountId": account,
            "automationId": automation_id,
            "entityId": entity,
            "marketId": rels.get("businessMarket", {}).get("data", {}).get("id", "default"),
            "partnerId": rels.get("businessPartner", {}).get("data", {}).get("id", "ABC"),
        }
        if ":ORD-" in entity:
            body["orderId"] = entity
        return dict(sorted(body.items()))

    async def _deliver(self, step: WebhookStep, body: dict[str, Any]) -> None:
        await asyncio.sleep(step.pause)
        headers = {"Content-Type": "application/json", step.token_header: step.token}
        try:
            async with httpx.AsyncClient(timeout=10) as client:
                answer = await client.post(step.url, content=json.dumps(body), headers=headers)
            self.delivered.append((body, answer.status_code))
        except httpx.HTTPError as exc:
            self.delivered.append((body, type(exc).__name__))


_AUTOMATION_ID = re.compile(r"Automation-\S+")


def _run_problem(body: Any) -> tuple[str, str]:
    """What is wrong with a Create-automation-run body (and where), or ('', '')."""
    data = body.get("data") if isinstance(body, dict) else None
    if not isinstance(data, dict):
        return "the body needs a data object", "/data"
    if data.get("type") != "automationRuns":
        return "data.type must be automationRuns", "/data/type"
    automation = (data.get("relationships") or {}).get("automation")
    ref = automation.get("data") if isinstance(automation, dict) else None
    if not isinstance(ref, dict) or ref.get("type") != "automations":
        return (
            "relationships.automation.data must be {type: automations, id}",
            "/data/relationships/automation/data",
        )
    if not isinstance(ref.get("id"), str) or not _AUTOMATION_ID.fullmatch(ref["id"]):
        return "the automation id must start with Automation-", "/data/relationships/automation"
    attributes = data.get("attributes")
    if not isinstance(attributes, dict) or not isinstance(attributes.get("entityId"), str):
        return "attributes.entityId is required", "/data/attributes/entityId"
    extra = attributes.get("data", {})
    if not isinstance(extra, dict) or any(isinstance(v, dict | list) for v in extra.values()):
        return (
            "attributes.data must be a flat object of strings, numbers or booleans",
            "/data/attributes/data",
        )
    return "", ""


@functools.lru_cache(maxsize=16)
def _public_key(private_pem: str) -> Any:
    """The public half of a fixture key (RSA key checks are slow: do them once)."""
    return load_pem_private_key(private_pem.encode(), password=None).public_key()


def _oauth(status: int, error: str, description: str) -> JSONResponse:
    return JSONResponse({"error": error, "error_description": description}, status_code=status)


def _errors(
    status: int,
    title: str,
    detail: str,
    headers: dict[str, str] | None = None,
    pointer: str | None = None,
) -> Response:
    error: dict[str, Any] = {"status": str(status), "title": title, "detail": detail}
    if pointer:
        error["source"] = {"pointer": pointer}
    body = {"errors": [error]}
    return Response(json.dumps(body), status_code=status, media_type=JSONAPI, headers=headers)


@dataclass
class RunningFake:
    """A fake with its server's URLs."""

    fake: FakeVendasta
    url: str

    @property
    def base_url(self) -> str:
        return self.url + "/platform"

    @property
    def token_url(self) -> str:
        return self.url + "/oauth2/token"

    @property
    def user_info_url(self) -> str:
        return self.url + "/oauth2/user-info"


@contextmanager
def running_fake() -> Iterator[RunningFake]:
    fake = FakeVendasta()
    with ThreadedServer(fake.app()) as server:
        yield RunningFake(fake, server.url)


CREDENTIALS = FIXTURES / "credentials"
RS256 = CREDENTIALS / "rs256.json"
ES256 = CREDENTIALS / "es256.json"
