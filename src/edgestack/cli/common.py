"""What every command shares: the console, how to reach a hub, and how results print."""

import json
import logging
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar, get_args

import typer
from pydantic import BaseModel, Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict
from rich import box
from rich.console import Console, Group, RenderableType
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
from rich.text import Text

from edgestack.client import HubClient, HubError

__all__ = [
    "AdminOpt",
    "ClientSettings",
    "HubOpt",
    "JobOpt",
    "JsonOpt",
    "Listing",
    "call",
    "choice",
    "connect",
    "console",
    "emit",
    "fail",
    "load_settings",
    "name_at",
    "print_json",
    "progress_bar",
    "progress_steps",
    "request",
    "setup_logging",
    "workflow",
]

T = TypeVar("T")
S = TypeVar("S", bound=BaseSettings)
M = TypeVar("M", bound=BaseModel)

console = Console()

# Free text narrower than this reads as a column of single words.
_MIN_TEXT = 20

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
JobOpt = Annotated[
    bool, typer.Option("--job", help="Queue it as a job on the hub instead of running it here.")
]


class ClientSettings(BaseSettings):
    """How the CLI reaches a hub; env vars `EDGESTACK_HUB_URL`, and `EDGESTACK_TOKEN` (a
    named token of any role) or else `EDGESTACK_ADMIN_TOKEN` (the hub's own)."""

    model_config = SettingsConfigDict(populate_by_name=True)

    hub_url: str = Field(default="http://127.0.0.1:8400", validation_alias="EDGESTACK_HUB_URL")
    token: SecretStr | None = Field(default=None, validation_alias="EDGESTACK_TOKEN")
    admin_token: SecretStr = Field(
        default=SecretStr("dev-admin-token"), validation_alias="EDGESTACK_ADMIN_TOKEN"
    )

    def api_token(self) -> str:
        """The token calls carry: `token` when set, else `admin_token`."""
        return (self.token or self.admin_token).get_secret_value()


HubOpt = Annotated[str | None, typer.Option("--hub", help=r"Hub URL \[env EDGESTACK_HUB_URL].")]
AdminOpt = Annotated[
    str | None,
    typer.Option(
        "--token",
        "--admin-token",
        help=r"An API token \[env EDGESTACK_TOKEN, else EDGESTACK_ADMIN_TOKEN]",
        show_default=False,
    ),
]


def fail(message: str, status: int = 1) -> typer.Exit:
    """Print `error: message` and give the exit to raise: 2 for bad input, 1 otherwise."""
    console.print(f"[red]error:[/] {escape(message)}", highlight=False)
    return typer.Exit(status)


def request(kind: type[M], /, **options: Any) -> M:
    """`kind` made of a command's options; one it refuses ends the command with exit 2,
    naming the option and its value."""
    try:
        return kind(**options)
    except ValidationError as exc:
        error = exc.errors()[0]
        field = str(error["loc"][0]) if error["loc"] else ""
        option = "--" + field.replace("_", "-")
        raise fail(f"{option} {options.get(field)!r}: {error['msg']}", 2) from None


def choice(option: str, value: str | None, kind: object) -> str | None:
    """`value` when it is one of the `Literal` `kind`'s values (or None); else the command
    ends with exit 2, naming `option` and the values it takes."""
    known = get_args(kind)
    if value is not None and value not in known:
        raise fail(f"{option} {value!r}: give one of {', '.join(known)}", 2)
    return value


def load_settings(cls: type[S], **given: Any) -> S:
    """Settings from the environment, overridden by the options given on the command line."""
    try:
        return cls(**{k: v for k, v in given.items() if v is not None})
    except ValidationError as exc:
        for error in exc.errors():
            field = ".".join(str(p) for p in error["loc"])
            if error["type"] == "missing":
                message = "not set; give its option or set it in the environment (see --help)"
            elif error["type"] == "value_error":
                # The validator's own sentence, which names its fields, without pydantic's
                # "Value error, " before it.
                message = str(error["ctx"]["error"])
            else:
                message = error["msg"]
            line = f"{field}: {message}" if field else message
            console.print(f"[red]error:[/] {escape(line)}", highlight=False)
        raise typer.Exit(2) from None


def connect(hub: str | None, admin_token: str | None) -> HubClient:
    settings = load_settings(ClientSettings, hub_url=hub, token=admin_token)
    return HubClient(settings.hub_url, admin_token=settings.api_token())


def setup_logging() -> None:
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
        stream=sys.stderr,
    )
    # One line per request, long-polls included, drowns what the agent itself has to say.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    # Alembic logs each revision's whole docstring above a first hub's tokens; the hub says
    # in one line from which revision to which it went.
    logging.getLogger("alembic").setLevel(logging.WARNING)


def print_json(data: BaseModel | Sequence[BaseModel]) -> None:
    dumped = (
        data.model_dump(mode="json")
        if isinstance(data, BaseModel)
        else [row.model_dump(mode="json") for row in data]
    )
    print(json.dumps(dumped, indent=2))


@dataclass(frozen=True)
class Listing:
    """A listing's table, readable on a terminal of any width down to 80 columns.

    Values never shrink below their own width: `wrap` columns (free text) break between
    words, the others stay whole on one line. Where even that is too wide, the columns of
    `hide_first` go, in that order, and a note below names them (`--json` has every field).
    Past that, the terminal is too narrow to help and values fold.
    """

    headers: Sequence[str]
    cells: Sequence[Sequence[str]]
    wrap: Sequence[str] = ()
    hide_first: Sequence[str] = ()

    def render(self, to: Console = console) -> RenderableType:
        """The table as `to` prints it at its width."""
        hidden: list[str] = []
        for header in self.hide_first:
            if self._least_width(hidden) <= to.width:
                break
            hidden.append(header)
        table = self._table(hidden)
        if not hidden:
            return table
        note = Text(f"hidden to fit: {', '.join(hidden)} (--json)")
        return Group(table, note)

    def _widths(self, hidden: Sequence[str]) -> dict[int, int]:
        """The least width of each shown column, by index: its longest value whole, or for
        free text its longest word and room for a few more."""
        widths = {}
        for i, header in enumerate(self.headers):
            if header in hidden:
                continue
            values = [row[i] for row in self.cells]
            if header in self.wrap:
                widths[i] = max(
                    [_MIN_TEXT, len(header), *(len(w) for v in values for w in v.split())]
                )
            else:
                # A list, not arguments: an empty listing still has its header's width.
                widths[i] = max([len(header), *map(len, values)])
        return widths

    def _least_width(self, hidden: Sequence[str]) -> int:
        widths = self._widths(hidden)
        # One space of padding each side of a column and one for the rule between columns.
        return sum(widths.values()) + 3 * (len(widths) - 1)

    def _table(self, hidden: Sequence[str]) -> Table:
        table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
        widths = self._widths(hidden)
        for i, least in widths.items():
            header = self.headers[i]
            if header in self.wrap:
                table.add_column(header, min_width=least, overflow="fold")
            else:
                table.add_column(header, min_width=least, no_wrap=True)
        for row in self.cells:
            # Text, not markup: a device's message prints as it was sent.
            table.add_row(*(Text(row[i]) for i in widths))
        return table


def emit(rows: Sequence[BaseModel], as_json: bool, listing: Listing) -> None:
    """`rows` as JSON, or `listing` as a table as wide as the terminal."""
    if as_json:
        print_json(rows)
        return
    console.print(listing.render())


def call(action: Callable[[], T]) -> T:
    """The result of a call to the hub; a refusal ends the command with its reason."""
    try:
        return action()
    except HubError as exc:
        raise fail(str(exc)) from None


def workflow(action: Callable[[], T]) -> T:
    """The result of a library workflow; a bad request ends the command with exit 2, a refusal
    by the hub or a bad dataset with exit 1, each with its reason, naming the option at
    fault."""
    # Imported here: the workflows pull in numerical libraries the other commands never need.
    from edgestack.learning.workflow import WorkflowError

    try:
        return action()
    except HubError as exc:
        raise fail(str(exc)) from None
    except WorkflowError as exc:
        message = f"--{exc}" if exc.field else str(exc)
        raise fail(message, 2 if exc.usage else 1) from None


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


@contextmanager
def progress_steps(description: str, *, as_json: bool) -> Iterator[Callable[[str, int, int], None]]:
    """A progress bar starting at `description`, and the callback a workflow advances it with
    (what was just done, steps done, steps in all). Beside JSON the bar goes to stderr, so
    stdout stays one document."""
    with progress_bar(to=Console(stderr=True) if as_json else console) as progress:
        task = progress.add_task(description, total=None)

        def advance(what: str, done: int, total: int) -> None:
            progress.update(task, description=what, completed=done, total=total)

        yield advance


def name_at(
    name: str | None, version: int | None, argument: str, option: str
) -> tuple[str | None, int | None]:
    """`NAME@VERSION` split, or `name` and `version` as they are: a name may hold `@` itself,
    so only digits after the last one are a version. `argument` and `option` name the
    command's argument and its version option in the errors."""
    if name is None or "@" not in name:
        return name, version
    head, _, tail = name.rpartition("@")
    if not tail.isdigit() or not head:
        return name, version
    if version is not None:
        raise fail(f"{option}: {argument} {name!r} names its version already; give one", 2)
    if int(tail) < 1:
        raise fail(f"{argument} {name!r}: versions count from 1", 2)
    return head, int(tail)
