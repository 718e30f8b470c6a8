"""Options shared by the commands that call Vendasta's API (`fetch`, `token`, `trigger`,
`sample --from`): declared once, given to a command as one `ApiOptions` by
`with_api_options`.

Only typer at the top: the client and crypto code are imported when a command runs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from vwh.cli.option_group import Command, OptionSpec, option_group

if TYPE_CHECKING:
    from vwh.api import VendastaClient


class Env(str, Enum):
    prod = "prod"
    demo = "demo"


def env_option() -> Env | None:
    return typer.Option(
        None,
        "--env",
        case_sensitive=False,
        help="Vendasta environment [default: prod, or demo for demo credentials].",
    )


def base_url_option() -> str | None:
    return typer.Option(
        None,
        "--base-url",
        metavar="URL",
        envvar="VWH_BASE_URL",
        help="API base URL instead of --env's (a mock, a proxy).",
    )


def access_token_option() -> str | None:
    return typer.Option(
        None,
        "--access-token",
        metavar="TOKEN",
        envvar="VWH_ACCESS_TOKEN",
        show_envvar=True,
        help="A token minted elsewhere (instead of credentials).",
    )


def credentials_option() -> Path | None:
    return typer.Option(
        None,
        "--credentials",
        metavar="FILE",
        envvar="VWH_CREDENTIALS",
        show_envvar=True,
        readable=False,  # vwh reads it: an unreadable file is a credentials error (exit 10)
        help="Service-account JSON from Partner Center [default: the one file in"
        " ~/.config/api-gateway/].",
    )


def token_url_option() -> str | None:
    return typer.Option(
        None,
        "--token-url",
        metavar="URL",
        envvar="VWH_TOKEN_URL",
        help="Token endpoint instead of the credentials' token_uri (a mock, a proxy).",
    )


def timeout_option() -> float:
    return typer.Option(30.0, "--timeout", metavar="SECONDS", min=0.1, help="Per request.")


@dataclass
class ApiOptions:
    env: Env | None = None
    base_url: str | None = None
    access_token: str | None = None
    credentials: Path | None = None
    token_url: str | None = None
    scopes: tuple[str, ...] = ()
    timeout: float = 30.0
    retries: int = 3

    def client(self) -> VendastaClient:
        """The API client these options describe (credentials are loaded and checked here)."""
        from vwh.api import VendastaClient, api_base_url
        from vwh.auth import token_source

        source = token_source(
            access_token=self.access_token, credentials=self.credentials, token_url=self.token_url
        )
        env = self.env.value if self.env else None
        base_url, api_env = api_base_url(env, self.base_url, source.env)
        return VendastaClient(
            source,
            base_url=base_url,
            env=api_env,
            scopes=self.scopes,
            timeout=self.timeout,
            retries=self.retries,
        )

    def user_info_url(self, client: VendastaClient) -> str:
        """The user-info endpoint beside the token endpoint in use."""
        from vwh.auth import default_token_url
        from vwh.tokens import user_info_url

        token_url = self.token_url or client.source.token_url
        if token_url is None:
            env = self.env.value if self.env else (client.env or "prod")
            token_url = default_token_url(env if env in ("prod", "demo") else "prod")
        return user_info_url(token_url)


def with_api_options(*, base_url: bool = True) -> Callable[[Command], Command]:
    """Give a command the API options where its `api_options` parameter stands, gathered
    into that one `ApiOptions` (`vwh token` has no --base-url)."""
    options: list[OptionSpec] = [
        ("env", Env | None, env_option),
        ("base_url", str | None, base_url_option),
        ("access_token", str | None, access_token_option),
        ("credentials", Path | None, credentials_option),
        ("token_url", str | None, token_url_option),
        ("timeout", float, timeout_option),
    ]
    if not base_url:
        options = [o for o in options if o[0] != "base_url"]
    return option_group("api_options", options, ApiOptions)
