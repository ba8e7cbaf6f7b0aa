"""`univence accounts …`: users, premium, disabling, API keys, credits, balance and ledger, over the
accounts service's admin RPCs (so it works against a local or a remote deployment).

With no flags it talks to this machine's accounts service, where this machine's settings put it (the
edge's `accounts_address`, else `univence.registry.address`), with the admin token that service
requires (univence.admin: configured, or the file it generated in the data folder). A remote
operator passes --address and --admin-token."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any

import grpc
from google.protobuf.json_format import MessageToDict

from univence import admin
from univence.accounts.v1 import accounts_pb2 as pb
from univence.accounts.v1 import accounts_pb2_grpc
from univence.registry import address
from univence.settings import configured


def credits_to_mc(text: str) -> int:
    """'12.5' credits → 12500 milli-credits, exactly."""
    try:
        value = Decimal(text) * 1000
    except InvalidOperation:
        raise argparse.ArgumentTypeError(f"not a number of credits: {text!r}") from None
    if value != value.to_integral_value() or value <= 0:
        raise argparse.ArgumentTypeError("credits must be positive with at most 3 decimals")
    return int(value)


def mc_to_credits(mc: int) -> str:
    return f"{Decimal(mc) / 1000:f}"


def add_commands(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("accounts", help="administer users, API keys and credits")
    parser.add_argument("--address", help="accounts service address (default: where this machine's settings "
                        "put it, as the edge reaches it)")
    parser.add_argument("--admin-token", help="the accounts service's admin token (default: this machine's, "
                        "configured or in the data folder's admin-token file)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")

    def command(name: str, help_: str, handler: Callable[[Any, argparse.Namespace], Any]) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_)
        p.set_defaults(run=lambda args: _run(args, handler))
        return p

    p = command("create-user", "create a user", lambda s, a: s.CreateUser(
        pb.CreateUserRequest(email=a.email, premium=a.premium), **a.call).user)
    p.add_argument("email")
    p.add_argument("--premium", action="store_true", help="premium users pay nothing and may use chat")
    p = command("get-user", "show a user", lambda s, a: s.GetUser(pb.GetUserRequest(user=a.user), **a.call).user)
    p.add_argument("user", help="user id or email")
    command("list-users", "list users", _list_users)
    p = command("set-premium", "mark a user premium or not", lambda s, a: s.UpdateUser(
        pb.UpdateUserRequest(user=a.user, premium=a.state == "on"), **a.call).user)
    p.add_argument("user", help="user id or email")
    p.add_argument("state", choices=["on", "off"])
    p = command("disable", "disable a user: their keys, sessions and tokens stop working", lambda s, a: s.UpdateUser(
        pb.UpdateUserRequest(user=a.user, disabled=True), **a.call).user)
    p.add_argument("user", help="user id or email")
    p = command("enable", "enable a disabled user again", lambda s, a: s.UpdateUser(
        pb.UpdateUserRequest(user=a.user, disabled=False), **a.call).user)
    p.add_argument("user", help="user id or email")
    p = command("create-key", "create an API key (its secret is shown once)", lambda s, a: s.CreateApiKey(
        pb.CreateApiKeyRequest(user=a.user, name=a.name), **a.call))
    p.add_argument("user", help="user id or email")
    p.add_argument("--name", default="", help="a label for the key")
    p = command("list-keys", "list a user's API keys", lambda s, a: s.ListApiKeys(
        pb.ListApiKeysRequest(user=a.user), **a.call))
    p.add_argument("user", help="user id or email")
    p = command("revoke-key", "revoke an API key at once", lambda s, a: s.RevokeApiKey(
        pb.RevokeApiKeyRequest(key_id=a.key_id), **a.call).api_key)
    p.add_argument("key_id")
    p = command("grant", "add credits: free (--credits) or a purchase (--paid-cents, bulk discounts apply)",
                lambda s, a: s.GrantCredits(pb.GrantCreditsRequest(
                    user=a.user, amount_mc=a.credits or 0, paid_cents=a.paid_cents or 0, note=a.note), **a.call))
    p.add_argument("user", help="user id or email")
    amount = p.add_mutually_exclusive_group(required=True)
    amount.add_argument("--credits", type=credits_to_mc, help="credits to add (1 credit = $0.01)")
    amount.add_argument("--paid-cents", type=int, help="a purchase: what the user paid, in US cents")
    p.add_argument("--note", default="")
    p = command("balance", "show a user's balance", _balance)
    p.add_argument("user", help="user id or email")
    p = command("ledger", "show a user's ledger, newest first", _ledger)
    p.add_argument("user", help="user id or email")
    p.add_argument("--limit", type=int, default=50)


def _user_id(stub, args: argparse.Namespace) -> str:
    return stub.GetUser(pb.GetUserRequest(user=args.user), **args.call).user.user_id


def _balance(stub, args: argparse.Namespace) -> pb.GetBalanceResponse:
    return stub.GetBalance(pb.GetBalanceRequest(user_id=_user_id(stub, args)), **args.call)


def _ledger(stub, args: argparse.Namespace) -> pb.ListLedgerEntriesResponse:
    return stub.ListLedgerEntries(pb.ListLedgerEntriesRequest(
        user_id=_user_id(stub, args), page_size=args.limit), **args.call)


def _list_users(stub, args: argparse.Namespace) -> pb.ListUsersResponse:
    users, token = [], ""
    while True:
        page = stub.ListUsers(pb.ListUsersRequest(page_size=1000, page_token=token), **args.call)
        users.extend(page.users)
        token = page.next_page_token
        if not token:
            return pb.ListUsersResponse(users=users)


def local_accounts_address() -> str:
    """Where the edge on this machine reaches accounts: its `accounts_address` setting, else where the
    accounts service's own settings put it."""
    return str(configured("edge", "accounts_address", "") or address("accounts"))


def _run(args: argparse.Namespace, handler: Callable[[Any, argparse.Namespace], Any]) -> int:
    try:
        token = args.admin_token if args.admin_token is not None else admin.local_admin_token()
    except PermissionError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    args.call = {"metadata": admin.metadata(token), "timeout": 30}
    with grpc.insecure_channel(args.address or local_accounts_address()) as channel:
        stub = accounts_pb2_grpc.AccountsServiceStub(channel)
        try:
            result = handler(stub, args)
        except grpc.RpcError as exc:
            hint = {grpc.StatusCode.UNAVAILABLE: " (is the stack running? `univence up`)",
                    grpc.StatusCode.PERMISSION_DENIED: "" if token else
                    " (no admin token found on this machine: pass --admin-token)"}.get(exc.code(), "")
            print(f"error: {exc.details()}{hint}", file=sys.stderr)
            return 1
    data = MessageToDict(result, preserving_proto_field_name=True, always_print_fields_with_no_presence=True)
    print(json.dumps(data, indent=2) if args.json else _text(data))
    return 0


def _text(data: dict[str, Any]) -> str:
    """Readable lines; milli-credit fields are shown in credits."""
    lines: list[str] = []

    def walk(value: Any, prefix: str) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                walk(v, f"{prefix}{k}." if isinstance(v, dict | list) else f"{prefix}{k}")
        elif isinstance(value, list):
            for i, item in enumerate(value):
                walk(item, f"{prefix}{i}.")
        else:
            key = prefix
            if key.endswith("_mc"):
                key, value = key[:-3] + "_credits", mc_to_credits(int(value))
            lines.append(f"{key}: {value}")

    walk(data, "")
    return "\n".join(lines)
