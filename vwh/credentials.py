"""Service-account credentials: the JSON file a partner downloads from Partner Center.

A bad file should fail here, once, naming the file and what is wrong with it, rather
than as a puzzling refusal from the token endpoint later. The private key is parsed
and checked against the declared algorithm, and never shown: not in messages, not
in a repr.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from vwh.errors import CredentialsError
from vwh.text_file import read_text_file

# Where Vendasta's own docs and tools keep credentials files.
DEFAULT_DIR = Path("~/.config/api-gateway")

TOKEN_URLS = {
    "prod": "https://sso-api-prod.apigateway.co/oauth2/token",
    "demo": "https://sso-api-demo.apigateway.co/oauth2/token",
}
SUPPORTED_ALGS = ("RS256", "ES256")

_REQUIRED = (
    ("private_key",),
    ("token_uri",),
    ("assertionHeaderData", "alg"),
    ("assertionHeaderData", "kid"),
    ("assertionPayloadData", "aud"),
    ("assertionPayloadData", "iss"),
    ("assertionPayloadData", "sub"),
)


@dataclass(frozen=True)
class ServiceAccount:
    """A validated credentials file; `signing_key` is ready for PyJWT."""

    path: Path | None
    client_email: str
    private_key_id: str
    token_uri: str
    alg: str
    kid: str
    aud: str
    iss: str
    sub: str
    signing_key: Any = field(repr=False, compare=False)

    @property
    def env(self) -> str | None:
        """The Vendasta environment its token endpoint belongs to ("prod", "demo" or None)."""
        return env_for_token_url(self.token_uri)

    @property
    def name(self) -> str:
        """How to refer to the account in messages."""
        return self.client_email or self.sub


def env_for_token_url(url: str) -> str | None:
    """Which environment a token endpoint implies, so demo credentials default to demo."""
    host = (urlsplit(url).hostname or "").lower()
    for env, known in TOKEN_URLS.items():
        if host == urlsplit(known).hostname:
            return env
    return None


def load_credentials(path: Path | str) -> ServiceAccount:
    """Read and check a credentials file; raise CredentialsError naming what is wrong."""
    path = Path(path).expanduser()
    text = read_text_file(
        path, CredentialsError, label="credentials file", not_text="not JSON (not UTF-8 text)"
    )
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CredentialsError(
            f"credentials file {path}: not JSON ({exc.msg} at line {exc.lineno} column {exc.colno})"
        ) from None
    return parse_credentials(data, path)


def parse_credentials(data: Any, path: Path | None = None) -> ServiceAccount:
    """Check a parsed credentials document (see load_credentials)."""
    where = f"credentials file {path}" if path else "credentials"
    if not isinstance(data, dict):
        raise CredentialsError(f"{where}: not a JSON object")
    if data.get("type", "service_account") != "service_account":
        raise CredentialsError(f"{where}: type is {data.get('type')!r}, not 'service_account'")
    missing = [".".join(keys) for keys in _REQUIRED if not _is_text(_dig(data, keys))]
    if missing:
        raise CredentialsError(f"{where}: missing or empty: {', '.join(missing)}")
    header, claims = data["assertionHeaderData"], data["assertionPayloadData"]
    alg = header["alg"]
    if alg not in SUPPORTED_ALGS:
        raise CredentialsError(
            f"{where}: assertionHeaderData.alg is {alg!r}; vwh signs with "
            + " or ".join(SUPPORTED_ALGS)
        )
    token_uri = data["token_uri"]
    if urlsplit(token_uri).scheme not in ("http", "https"):
        raise CredentialsError(f"{where}: token_uri {token_uri!r} is not an http(s) URL")
    return ServiceAccount(
        path=path,
        client_email=str(data.get("client_email") or claims["iss"]),
        private_key_id=str(data.get("private_key_id") or header["kid"]),
        token_uri=token_uri,
        alg=alg,
        kid=header["kid"],
        aud=claims["aud"],
        iss=claims["iss"],
        sub=claims["sub"],
        signing_key=_load_key(data["private_key"], alg, where),
    )


def _load_key(pem: str, alg: str, where: str) -> Any:
    """Parse the PEM key and check it suits `alg`; the message never quotes the key."""
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    try:
        key = load_pem_private_key(pem.encode("utf-8"), password=None)
    except (ValueError, TypeError):
        raise CredentialsError(
            f"{where}: private_key is not a usable PEM private key (unencrypted PKCS#8 or PKCS#1)"
        ) from None
    except Exception as exc:  # cryptography raises its own types for unsupported keys
        raise CredentialsError(
            f"{where}: private_key cannot be used ({type(exc).__name__})"
        ) from None
    if alg == "RS256" and not isinstance(key, rsa.RSAPrivateKey):
        raise CredentialsError(f"{where}: alg is RS256 but private_key is not an RSA key")
    if alg == "ES256" and not (
        isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp256r1"
    ):
        raise CredentialsError(f"{where}: alg is ES256 but private_key is not a P-256 EC key")
    return key


def _dig(data: dict[str, Any], keys: tuple[str, ...]) -> Any:
    value: Any = data
    for key in keys:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def _is_text(value: Any) -> bool:
    return isinstance(value, str) and value.strip() != ""


def default_credentials_dirs() -> list[Path]:
    """`~/.config/api-gateway`, and the same under XDG_CONFIG_HOME when that differs."""
    dirs = [DEFAULT_DIR.expanduser()]
    xdg = os.environ.get("XDG_CONFIG_HOME")
    if xdg:
        alt = Path(xdg).expanduser() / "api-gateway"
        if alt.resolve() != dirs[0].resolve():
            dirs.append(alt)
    return dirs


def find_default_credentials() -> Path | None:
    """The one credentials file in the default directory; None when there is none.

    Several files are an error rather than a guess: picking the wrong account would
    fail later, confusingly, as a 403 or a 404.
    """
    found: list[Path] = []
    for directory in default_credentials_dirs():
        if directory.is_dir():
            try:
                listing = sorted(entry.name for entry in os.scandir(directory))
            except OSError as exc:
                raise CredentialsError(
                    f"credentials directory {directory}: cannot read ({exc.strerror})"
                ) from None
            found.extend(directory / n for n in listing if n.endswith(".json") and n[:1] != ".")
    found = [p for p in found if p.is_file()]
    if not found:
        return None
    if len(found) > 1:
        names = ", ".join(str(p) for p in found)
        raise CredentialsError(
            f"several credentials files ({names}): choose one with --credentials FILE"
        )
    return found[0]
