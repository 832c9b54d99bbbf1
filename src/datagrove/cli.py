"""The ``datagrove`` command: run the server and manage users and credentials.

    datagrove serve [--host H] [--port P] [--data-dir D]
    datagrove user create --name N --email E [--role Admin|Privileged|Editor|Participant]
    datagrove user list [--limit N] [--offset N]
    datagrove user update --user-id U [--name N] [--email E] [--role R]
    datagrove user delete --user-id U
    datagrove user set-password --user-id U [--remove]    (reads the password from stdin or a prompt)
    datagrove group create --name N [--inactive] [--default]
    datagrove group list
    datagrove group add-user|remove-user --group-id G --user-id U
    datagrove client create --user-id U [--scopes "data user"] [--client-id ID] [--secret S]
    datagrove token create --user-id U [--name N] [--expires-days D]
    datagrove account create --name N --type T [--credential KEY=VALUE | --credential KEY]...
                             [--user-id OWNER] [--invalid]
    datagrove account list [--limit N] [--offset N]
    datagrove account delete --account-id A
    datagrove maintenance expire|sweep|compact [--dataset ID] [--dry-run]
    datagrove check [--dataset ID]
    datagrove backup DEST [--include-secret-key]     (online: servers keep serving)
    datagrove restore SRC [--force]                  (no server may run on the target)
    datagrove upload FILE.csv[.gz] --dataset ID|--stream ID [--parts N] [--parallel N] [--replace]
                     [--url URL] [--token T | --client-id C --client-secret S]

Every flag has a ``DATAGROVE_*`` environment equivalent (see docs/settings.md).
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from datagrove import logs
from datagrove.domain import Account, Actor, Group, Role, User
from datagrove.errors import BadRequest, DatagroveError
from datagrove.settings import Settings, load

if TYPE_CHECKING:
    from datagrove.services.people import Person

BOOTSTRAP_ADMIN_EMAIL = "admin@datagrove.local"  # services.auth.ensure_admin's


def _settings(args: argparse.Namespace) -> Settings:
    return load(host=getattr(args, "host", None), port=getattr(args, "port", None), data_dir=args.data_dir)


def serve(args: argparse.Namespace) -> None:
    from datagrove import serving
    from datagrove.app import build_services, create_app, stop_background_work
    from datagrove.services.bootstrap import bootstrap

    settings = _settings(args)
    logs.configure(settings.log_level)
    services = build_services(settings)
    bootstrap(settings, services.catalog, services.auth)
    app = create_app(settings, services)
    serving.serve(
        app,
        host=settings.host,
        port=settings.port,
        grace_seconds=settings.shutdown_grace_seconds,
        on_drain=lambda: stop_background_work(services),
    )


def _services(args: argparse.Namespace) -> Any:
    from datagrove.app import build_services

    settings = _settings(args)
    logs.configure("WARNING")
    return build_services(settings)


def create_user(args: argparse.Namespace) -> None:
    password = _read_password() if args.password_stdin else None
    services = _services(args)
    user = services.catalog.create_user(name=args.name, email=args.email, role=Role(args.role))
    if password is not None:
        services.passwords.set_password(actor=_operator(), user_id=user.id, password=password)
    _print({"id": user.id, "name": user.name, "email": user.email, "role": user.role.value})


def _read_password() -> str:
    """A password from a prompt (typed twice, not echoed) or the first line of stdin; never an
    argument, which other users of the machine could read in the process list."""
    from datagrove.services.passwords import acceptable

    if sys.stdin.isatty():
        password = getpass.getpass("New password: ")
        if getpass.getpass("Repeat it: ") != password:
            raise BadRequest("the two passwords differ")
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    return acceptable(password)


def set_password(args: argparse.Namespace) -> None:
    password = None if args.remove else _read_password()
    _services(args).passwords.set_password(actor=_operator(), user_id=args.user_id, password=password)
    _print({"user": args.user_id, "password": "removed" if args.remove else "set"})


def _operator() -> Actor:
    """Whoever runs the CLI on the server acts as an admin; the activity log names them "CLI operator"."""
    now = datetime.now(UTC)
    return Actor(
        user=User(0, "CLI operator", "cli@localhost", Role.ADMIN, now, now), scopes=None, credential="cli"
    )


def _person(person: Person) -> dict[str, Any]:
    user = person.user
    groups = [{"id": g.id, "name": g.name} for g in person.groups]
    return {"id": user.id, "name": user.name, "email": user.email, "role": user.role.value, "groups": groups}


def list_users(args: argparse.Namespace) -> None:
    people = _services(args).people.list_users(actor=_operator(), limit=args.limit, offset=args.offset)
    _print([_person(p) for p in people])


def update_user(args: argparse.Namespace) -> None:
    person = _services(args).people.update_user(
        actor=_operator(),
        user_id=args.user_id,
        name=args.name,
        email=args.email,
        role=Role(args.role) if args.role else None,
    )
    _print(_person(person))


def delete_user(args: argparse.Namespace) -> None:
    _services(args).people.delete_user(actor=_operator(), user_id=args.user_id)
    _print({"deleted": args.user_id})


def _group(group: Group) -> dict[str, Any]:
    return {
        "id": group.id,
        "name": group.name,
        "active": group.active,
        "default": group.default,
        "memberCount": group.member_count,
    }


def create_group(args: argparse.Namespace) -> None:
    group = _services(args).people.create_group(
        actor=_operator(), name=args.name, active=not args.inactive, default=args.default
    )
    _print(_group(group))


def list_groups(args: argparse.Namespace) -> None:
    groups = _services(args).people.list_groups(actor=_operator(), limit=args.limit, offset=args.offset)
    _print([_group(g) for g in groups])


def add_group_user(args: argparse.Namespace) -> None:
    people = _services(args).people
    people.add_member(actor=_operator(), group_id=args.group_id, user_id=args.user_id)
    _print(_group(people.get_group(actor=_operator(), group_id=args.group_id)))


def remove_group_user(args: argparse.Namespace) -> None:
    people = _services(args).people
    people.remove_member(actor=_operator(), group_id=args.group_id, user_id=args.user_id)
    _print(_group(people.get_group(actor=_operator(), group_id=args.group_id)))


def create_client(args: argparse.Namespace) -> None:
    from datagrove.services.auth import parse_scopes

    services = _services(args)
    services.catalog.get_user(args.user_id)
    client, secret = services.auth.create_client(
        user_id=args.user_id, scopes=parse_scopes(args.scopes), client_id=args.client_id, secret=args.secret
    )
    _print({"client_id": client.client_id, "client_secret": secret, "scopes": sorted(client.scopes)})


def create_token(args: argparse.Namespace) -> None:
    services = _services(args)
    services.catalog.get_user(args.user_id)
    expires = datetime.now(UTC) + timedelta(days=args.expires_days) if args.expires_days else None
    record, token = services.auth.create_developer_token(
        user_id=args.user_id, name=args.name, expires_at=expires
    )
    _print({"id": record.id, "token": token, "expires_at": expires.isoformat() if expires else None})


def _account(account: Account) -> dict[str, Any]:
    """As ``/v1/accounts`` shows it: credential names, never their values."""
    from datagrove.services.accounts import MASK

    return {
        "id": str(account.id),
        "name": account.name,
        "valid": account.valid,
        "ownerId": account.owner_id,
        "type": {"id": account.type, "properties": dict.fromkeys(account.credential_keys, MASK)},
    }


def _credential_args(items: list[str]) -> dict[str, str | None]:
    """``KEY=VALUE`` pairs; a bare ``KEY`` is asked for without echo (keeps it out of the shell
    history and the process list)."""
    import getpass

    found: dict[str, str | None] = {}
    for item in items:
        key, has_value, value = item.partition("=")
        if not key.strip():
            raise DatagroveError(f"--credential needs KEY=VALUE or KEY, not {item.split('=')[0]!r}=...")
        found[key.strip()] = value if has_value else getpass.getpass(f"{key.strip()}: ")
    return found


def create_account(args: argparse.Namespace) -> None:
    services = _services(args)
    owner = args.user_id
    if owner is None:
        admin = services.catalog.find_user_by_email(BOOTSTRAP_ADMIN_EMAIL)
        if admin is None:
            raise DatagroveError("there is no bootstrap admin yet (start the server once); pass --user-id")
        owner = admin.id
    account = services.accounts.create(
        actor=_operator(),
        name=args.name,
        type=args.type,
        credentials=_credential_args(args.credential),
        valid=not args.invalid,
        owner_id=owner,
    )
    _print(_account(account))


def list_accounts(args: argparse.Namespace) -> None:
    accounts = _services(args).accounts.list_accounts(actor=_operator(), limit=args.limit, offset=args.offset)
    _print([_account(a) for a in accounts])


def delete_account(args: argparse.Namespace) -> None:
    _services(args).accounts.delete(actor=_operator(), account_id=args.account_id)
    _print({"deleted": str(args.account_id)})


def upload(args: argparse.Namespace) -> None:
    """Send a CSV file to a running server (a client: it reads no server settings)."""
    import os
    from pathlib import Path

    from datagrove import uploader

    env = os.environ.get
    server = uploader.Server(
        url=args.url or env("DATAGROVE_URL") or "http://127.0.0.1:8000",
        token=args.token or env("DATAGROVE_TOKEN"),
        client_id=args.client_id or env("DATAGROVE_CLIENT_ID"),
        client_secret=args.client_secret or env("DATAGROVE_CLIENT_SECRET"),
    )
    try:
        summary = uploader.upload(
            Path(args.file),
            server=server,
            dataset_id=args.dataset,
            stream_id=args.stream,
            parts=args.parts,
            parallel=args.parallel,
            replace=args.replace,
        )
    except KeyboardInterrupt:
        print("datagrove: interrupted; the upload was aborted", file=sys.stderr)
        sys.exit(130)
    print(summary)


def maintain(args: argparse.Namespace) -> None:
    """One maintenance step now, beside running servers (each dataset under its commit claim)."""
    import dataclasses

    services = _services(args)
    step = {
        "expire": services.maintenance.expire,
        "sweep": services.maintenance.sweep,
        "compact": services.maintenance.compact,
    }[args.step]
    reports = step(dataset_id=args.dataset, dry_run=args.dry_run)
    _print({"dryRun": args.dry_run, "datasets": [dataclasses.asdict(r) for r in reports]})


def check(args: argparse.Namespace) -> None:
    """Exit 1 (after the report) when the catalog, the metadata and the files disagree."""
    report = _services(args).maintenance.check(dataset_id=args.dataset)
    _print(
        {
            "ok": report.ok,
            "datasets": report.datasets,
            "referencedFiles": report.files,
            "problems": report.problems,
            "orphans": report.orphans,
            "awaitingDeletion": report.waiting,
            "recentUnreferenced": report.recent,
        }
    )
    if not report.ok:
        print(
            f"datagrove: check failed: {len(report.problems)} problem(s), {len(report.orphans)} orphan(s)",
            file=sys.stderr,
        )
        sys.exit(1)


def backup(args: argparse.Namespace) -> None:
    """A consistent copy of the catalog and every live snapshot's files, beside running servers."""
    import dataclasses
    from pathlib import Path

    from datagrove.storage_setup import backup_service

    settings = _settings(args)
    logs.configure("WARNING")
    report = backup_service(settings).backup(
        destination=Path(args.destination), include_secret_key=args.include_secret_key
    )
    _print(dataclasses.asdict(report))


def restore(args: argparse.Namespace) -> None:
    """Bring an empty (or, with --force, any) data directory and catalog back from a backup."""
    import dataclasses
    from pathlib import Path

    from datagrove.storage_setup import backup_service

    settings = _settings(args)
    logs.configure("WARNING")
    report = backup_service(settings).restore(source=Path(args.source), force=args.force)
    _print(dataclasses.asdict(report))
    if not report.secret_key:
        print(
            "datagrove: the backup holds no secret key: put the original secret.key in the data "
            "directory (or set DATAGROVE_SECRET_KEY) before connectors use their accounts",
            file=sys.stderr,
        )


def _print(value: Any) -> None:
    print(json.dumps(value, indent=2))


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(
        prog="datagrove", description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    commands = root.add_subparsers(dest="command", required=True)

    def with_data_dir(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument("--data-dir", help="data directory (DATAGROVE_DATA_DIR)")
        return p

    run = with_data_dir(commands.add_parser("serve", help="run the HTTP server"))
    run.add_argument("--host", help="listen address (DATAGROVE_HOST)")
    run.add_argument("--port", type=int, help="listen port (DATAGROVE_PORT)")
    run.set_defaults(handler=serve)

    user = commands.add_parser("user", help="manage users").add_subparsers(dest="action", required=True)
    create = with_data_dir(user.add_parser("create", help="create a user"))
    create.add_argument("--name", required=True)
    create.add_argument("--email", required=True)
    create.add_argument("--role", default=Role.PARTICIPANT.value, choices=[r.value for r in Role])
    create.add_argument(
        "--password-stdin", action="store_true", help="read a password for web sign-in from stdin"
    )
    create.set_defaults(handler=create_user)
    password = with_data_dir(
        user.add_parser("set-password", help="set (from stdin or a prompt) or remove a user's web password")
    )
    password.add_argument("--user-id", type=int, required=True)
    password.add_argument("--remove", action="store_true", help="remove the password instead")
    password.set_defaults(handler=set_password)
    listing = with_data_dir(user.add_parser("list", help="list users with their groups"))
    listing.add_argument("--limit", type=int, default=500, help="at most this many (max 500)")
    listing.add_argument("--offset", type=int, default=0)
    listing.set_defaults(handler=list_users)
    update = with_data_dir(user.add_parser("update", help="change a user's name, email or role"))
    update.add_argument("--user-id", type=int, required=True)
    update.add_argument("--name")
    update.add_argument("--email")
    update.add_argument("--role", choices=[r.value for r in Role])
    update.set_defaults(handler=update_user)
    delete = with_data_dir(user.add_parser("delete", help="delete a user who owns no datasets"))
    delete.add_argument("--user-id", type=int, required=True)
    delete.set_defaults(handler=delete_user)

    group = commands.add_parser("group", help="manage groups").add_subparsers(dest="action", required=True)
    create = with_data_dir(group.add_parser("create", help="create a group"))
    create.add_argument("--name", required=True)
    create.add_argument("--inactive", action="store_true", help="create it inactive")
    create.add_argument("--default", action="store_true", help="mark it as a default group")
    create.set_defaults(handler=create_group)
    listing = with_data_dir(group.add_parser("list", help="list groups"))
    listing.add_argument("--limit", type=int, default=500, help="at most this many (max 500)")
    listing.add_argument("--offset", type=int, default=0)
    listing.set_defaults(handler=list_groups)
    for name, handler, verb in (
        ("add-user", add_group_user, "add a user to a group"),
        ("remove-user", remove_group_user, "remove a user from a group"),
    ):
        member = with_data_dir(group.add_parser(name, help=verb))
        member.add_argument("--group-id", type=int, required=True)
        member.add_argument("--user-id", type=int, required=True)
        member.set_defaults(handler=handler)

    client = commands.add_parser("client", help="manage OAuth clients").add_subparsers(
        dest="action", required=True
    )
    create = with_data_dir(client.add_parser("create", help="create an OAuth client for a user"))
    create.add_argument("--user-id", type=int, required=True)
    create.add_argument("--scopes", default="data user")
    create.add_argument("--client-id")
    create.add_argument("--secret")
    create.set_defaults(handler=create_client)

    token = commands.add_parser("token", help="manage developer tokens").add_subparsers(
        dest="action", required=True
    )
    create = with_data_dir(token.add_parser("create", help="create a developer token for a user"))
    create.add_argument("--user-id", type=int, required=True)
    create.add_argument("--name", default="cli")
    create.add_argument("--expires-days", type=int)
    create.set_defaults(handler=create_token)

    account = commands.add_parser("account", help="manage accounts (connector credentials)").add_subparsers(
        dest="action", required=True
    )
    create = with_data_dir(account.add_parser("create", help="create an account; prints it, values masked"))
    create.add_argument("--name", required=True)
    create.add_argument("--type", required=True, help="the account type, e.g. postgresql, mysql, http")
    create.add_argument(
        "--credential",
        action="append",
        default=[],
        metavar="KEY[=VALUE]",
        help="a credential (repeatable); KEY alone asks for the value without echoing it",
    )
    create.add_argument("--user-id", type=int, help="the owner (default: the bootstrap admin)")
    create.add_argument("--invalid", action="store_true", help="mark the account not valid")
    create.set_defaults(handler=create_account)
    listing = with_data_dir(account.add_parser("list", help="list accounts (credential values masked)"))
    listing.add_argument("--limit", type=int, default=500, help="at most this many (max 500)")
    listing.add_argument("--offset", type=int, default=0)
    listing.set_defaults(handler=list_accounts)
    delete = with_data_dir(account.add_parser("delete", help="delete an account no stream uses"))
    delete.add_argument("--account-id", type=int, required=True)
    delete.set_defaults(handler=delete_account)

    maintenance = commands.add_parser("maintenance", help="table maintenance now").add_subparsers(
        dest="step", required=True
    )
    for name, verb in (
        ("expire", "delete the files of snapshots expired past the grace period; expire old snapshots"),
        ("sweep", "delete files no snapshot references, older than the safety age"),
        ("compact", "rewrite tables with many small files into files of the target size"),
    ):
        step = with_data_dir(maintenance.add_parser(name, help=verb))
        step.add_argument("--dataset", help="only this dataset (default: every one)")
        step.add_argument("--dry-run", action="store_true", help="report what would be done, change nothing")
        step.set_defaults(handler=maintain)
    verify = with_data_dir(
        commands.add_parser(
            "check", help="verify that catalog, Iceberg metadata and files agree (exit 1 if not)"
        )
    )
    verify.add_argument("--dataset", help="only this dataset (default: every one)")
    verify.set_defaults(handler=check)

    save = with_data_dir(
        commands.add_parser("backup", help="write a consistent backup while the server keeps serving")
    )
    save.add_argument("destination", help="a new or empty directory")
    save.add_argument(
        "--include-secret-key",
        action="store_true",
        help="also copy secret.key, which unseals account credentials (keep such a backup secret)",
    )
    save.set_defaults(handler=backup)
    load_ = with_data_dir(
        commands.add_parser("restore", help="restore a backup into this (empty) data directory and catalog")
    )
    load_.add_argument("source", help="a directory written by datagrove backup")
    load_.add_argument(
        "--force", action="store_true", help="replace the catalog and table files the target already holds"
    )
    load_.set_defaults(handler=restore)

    send = commands.add_parser("upload", help="upload a CSV file to a dataset in parallel gzip parts")
    send.add_argument("file", help="CSV without a header row, plain or .gz")
    target = send.add_mutually_exclusive_group(required=True)
    target.add_argument("--dataset", help="the dataset id (its stream is looked up)")
    target.add_argument("--stream", type=int, help="the stream id")
    send.add_argument("--parts", type=int, help="number of parts (default: one per 64 MiB)")
    send.add_argument("--parallel", type=int, default=4, help="parts in flight at once (default 4)")
    send.add_argument("--replace", action="store_true", help="replace the data instead of appending")
    send.add_argument("--url", help="server URL (DATAGROVE_URL, default http://127.0.0.1:8000)")
    send.add_argument("--token", help="developer token (DATAGROVE_TOKEN)")
    send.add_argument("--client-id", help="OAuth client id, instead of a token (DATAGROVE_CLIENT_ID)")
    send.add_argument("--client-secret", help="OAuth client secret (DATAGROVE_CLIENT_SECRET)")
    send.set_defaults(handler=upload)
    return root


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    try:
        args.handler(args)
    except DatagroveError as exc:
        print(f"datagrove: {exc.message}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
