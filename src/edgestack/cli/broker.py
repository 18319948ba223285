"""`edgestack broker config`: what a Mosquitto broker needs to carry devices to the hub."""

from pathlib import Path
from typing import Annotated

import typer

from edgestack.cli.common import console, fail, load_settings
from edgestack.mqttwire import MAX_PAYLOAD_BYTES

__all__ = ["app", "config"]

app = typer.Typer(no_args_is_help=True, help="The MQTT broker devices reach the hub through.")


@app.command()
def config(
    accounts: Annotated[
        Path | None,
        typer.Option(
            help="Folder for mosquitto.conf and the account files the hub keeps "
            r"\[env EDGESTACK_HUB_BROKER_ACCOUNTS]"
        ),
    ] = None,
    port: Annotated[int, typer.Option(min=1, max=65535, help="The port devices dial.")] = 1883,
    host: Annotated[str, typer.Option(help="The address the broker listens on.")] = "127.0.0.1",
) -> None:
    """Write a Mosquitto configuration (no anonymous access, a password file and an ACL file
    in ACCOUNTS, retained states and sessions kept on disk) and the hub's own account, so
    the broker can start before the hub. Run the hub with the same folder in
    EDGESTACK_HUB_BROKER_ACCOUNTS and a command that has the broker reread it in
    EDGESTACK_HUB_BROKER_RELOAD: the hub adds each device's account as the device enrols."""
    from edgestack.hub import HubSettings
    from edgestack.hub.broker import ACL_FILE, PASSWORD_FILE, write_accounts

    settings = load_settings(HubSettings, broker_accounts=accounts)
    if settings.broker_accounts is None:
        raise fail("--accounts: not set; give the folder, or set EDGESTACK_HUB_BROKER_ACCOUNTS", 2)
    folder = settings.broker_accounts.resolve()
    write_accounts(folder, settings, [])
    conf = folder / "mosquitto.conf"
    conf.write_text(
        f"listener {port} {host}\n"
        "allow_anonymous false\n"
        f"password_file {folder / PASSWORD_FILE}\n"
        f"acl_file {folder / ACL_FILE}\n"
        "persistence true\n"
        f"persistence_location {folder}/\n"
        # Mosquitto keeps 1000 messages for a subscriber that falls behind and drops the rest
        # unsaid, though each was acknowledged to its device: the hub's session keeps far
        # more. (0, no limit, left Mosquitto 2.0.11 answering no SUBACK to a device in the
        # tests.)
        "max_queued_messages 1000000\n"
        # A message the hub would refuse as too big is refused at the door; the margin is
        # for the topic and properties.
        f"max_packet_size {MAX_PAYLOAD_BYTES + 4096}\n"
    )
    console.print(f"wrote {conf}; start the broker with `mosquitto -c {conf}`", highlight=False)
