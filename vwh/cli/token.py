"""`vwh token`: mint (or reuse) an access token and print it as `Bearer <token>`."""

from __future__ import annotations

import typer

from vwh.cli import api_options as opt

HELP = """Print an access token as `Bearer <token>`, as Vendasta's minting tool does.

The token is minted from the service account with the given scopes (default:
profile email), or reused from the cache until shortly before it expires.
--check asks the user-info endpoint whom the token belongs to (it prints no token).
"""


def register(app: typer.Typer) -> None:
    @app.command("token", help=HELP)
    @opt.with_api_options(base_url=False)
    def token(
        scopes: list[str] = typer.Argument(
            None,
            metavar="SCOPE",
            show_default=False,
            help="Scopes to ask for [default: profile email].",
        ),
        check: bool = typer.Option(False, "--check", help="Show whom the token belongs to."),
        json_out: bool = typer.Option(False, "--json", help="Token, scopes and expiry as JSON."),
        api_options: opt.ApiOptions = opt.ApiOptions(),
    ) -> None:
        import asyncio
        import time
        from dataclasses import replace
        from datetime import datetime, timezone
        from typing import Any

        from vwh.cli.output import Output, untrusted
        from vwh.tokens import normalize_scopes

        wanted = normalize_scopes(scopes or ()) or ("profile", "email")
        options = replace(api_options, scopes=wanted)
        out, api = Output(json_mode=json_out), options.client()

        async def run() -> tuple[Any, dict[str, Any] | None]:
            async with api:
                minted = await api.token(wanted)
                info = await api.user_info(options.user_info_url(api), wanted) if check else None
                return minted, info

        tok, info = asyncio.run(run())
        left = None if tok.expires_at is None else max(0, int(tok.expires_at - time.time()))
        expiry = {
            "scopes": list(tok.scopes),
            "expires_at": None
            if tok.expires_at is None
            else datetime.fromtimestamp(tok.expires_at, timezone.utc).isoformat(),
            "expires_in": left,
        }
        if info is not None and json_out:
            out.json({"user_info": info, **expiry})
        elif info is not None:
            for key, value in {**info, "scopes": " ".join(tok.scopes) or "?"}.items():
                out.line(f"{key}: {value}")
            out.line(f"expires: {'?' if left is None else f'in {left // 60} min'}")
        elif json_out:
            out.json({"token_type": "Bearer", "access_token": tok.value, **expiry})
        else:
            out.line(tok.header)
            if out.rich:
                src = "reused from the cache" if tok.from_cache else api.source.description
                out.note(
                    f"[dim]{untrusted(src)}; valid {'?' if left is None else left // 60} min[/dim]"
                )
