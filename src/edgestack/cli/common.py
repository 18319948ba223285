"""What every command shares: the console, how to reach a hub, and how results print."""

import json
import logging
import sys
from collections.abc import Callable, Sequence
from typing import Annotated, Any, TypeVar

import typer
from pydantic import BaseModel, Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    Progress,
    ProgressColumn,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from edgestack.client import HubClient, HubError

__all__ = [
    "AdminOpt",
    "ClientSettings",
    "HubOpt",
    "JsonOpt",
    "call",
    "connect",
    "console",
    "emit",
    "fail",
    "load_settings",
    "print_json",
    "progress_bar",
    "setup_logging",
]

T = TypeVar("T")
S = TypeVar("S", bound=BaseSettings)

console = Console()

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


class ClientSettings(BaseSettings):
    """How the CLI reaches a hub; env vars `EDGESTACK_HUB_URL`, `EDGESTACK_ADMIN_TOKEN`."""

    model_config = SettingsConfigDict(populate_by_name=True)

    hub_url: str = Field(default="http://127.0.0.1:8400", validation_alias="EDGESTACK_HUB_URL")
    admin_token: SecretStr = Field(
        default=SecretStr("dev-admin-token"), validation_alias="EDGESTACK_ADMIN_TOKEN"
    )


HubOpt = Annotated[str | None, typer.Option("--hub", help=r"Hub URL \[env EDGESTACK_HUB_URL].")]
AdminOpt = Annotated[
    str | None,
    typer.Option("--admin-token", help=r"\[env EDGESTACK_ADMIN_TOKEN]", show_default=False),
]


def fail(message: str, status: int = 1) -> typer.Exit:
    """Print `error: message` and give the exit to raise: 2 for bad input, 1 otherwise."""
    console.print(f"[red]error:[/] {escape(message)}", highlight=False)
    return typer.Exit(status)


def load_settings(cls: type[S], **given: Any) -> S:
    """Settings from the environment, overridden by the options given on the command line."""
    try:
        return cls(**{k: v for k, v in given.items() if v is not None})
    except ValidationError as exc:
        for error in exc.errors():
            field = ".".join(str(p) for p in error["loc"])
            console.print(f"[red]error:[/] {field}: {error['msg']}")
        raise typer.Exit(2) from None


def connect(hub: str | None, admin_token: str | None) -> HubClient:
    settings = load_settings(ClientSettings, hub_url=hub, admin_token=admin_token)
    return HubClient(settings.hub_url, admin_token=settings.admin_token.get_secret_value())


def setup_logging() -> None:
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
        stream=sys.stderr,
    )
    # One line per request, long-polls included, drowns what the agent itself has to say.
    logging.getLogger("httpx").setLevel(logging.WARNING)


def print_json(data: BaseModel | Sequence[BaseModel]) -> None:
    dumped = (
        data.model_dump(mode="json")
        if isinstance(data, BaseModel)
        else [row.model_dump(mode="json") for row in data]
    )
    print(json.dumps(dumped, indent=2))


def emit(rows: Sequence[BaseModel], as_json: bool, table: Table, cells: list[list[str]]) -> None:
    """`rows` as JSON, or `cells` as the rows of `table`."""
    if as_json:
        print_json(rows)
        return
    for row in cells:
        table.add_row(*row)
    console.print(table)


def call(action: Callable[[], T]) -> T:
    """The result of a call to the hub; a refusal ends the command with its reason."""
    try:
        return action()
    except HubError as exc:
        raise fail(str(exc)) from None


def progress_bar(*extra: ProgressColumn, to: Console = console) -> Progress:
    """The bar long commands show: what is going on, how far, `extra` columns, time taken and
    left. Commands printing JSON pass `to=Console(stderr=True)`, so stdout stays one document."""
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        *extra,
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=to,
    )
