# -*- test-case-name: tests.ipmi.test_control -*-
"""``/control``: power, identify and SEL through the nodes' BMCs.

``GET /control/action/<command>/<node>/_<action>`` acts on one node;
``POST /control/action/<command>/_<action>`` with
``{"control": {command: {action: {"hostlist": "node[001-004]"}}}}`` on many,
answering once every BMC has answered or timed out, with the nodes grouped
by result and compressed back to hostlists (docs/API.md, "Control").

The BMC address is the node's ``BMC`` interface (the name in any case, as
the install script's BMC setup reads it); the user and password come from
the node's bmcsetup, else its group's. The IPMI client (luna2d.ipmi.client)
is handed in by tap.py; without one, actions answer 503."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import hostlist  # type: ignore[import-untyped]
from klein import Klein

from luna2d.errors import Forbidden, Invalid, NotFound, Unavailable
from luna2d.ipmi import commands
from luna2d.ipmi.client import Target
from luna2d.ipmi.session import Credentials, Fault, Outcome, Success
from luna2d.resources import common
from luna2d.resources.auth import Auth
from luna2d.resources.common import envelope, message, no_content, read_json, reply

# (command, action) -> the IPMI command it runs: luna2d.ipmi.commands' table, for these commands
CONTROL_COMMANDS = ("power", "chassis", "sel")
ACTIONS: dict[tuple[str, str], Callable[[], commands.Command]] = {
    key: factory for key, factory in commands.COMMANDS.items() if key[0] in CONTROL_COMMANDS
}
READ_ONLY = {("power", "status"), ("sel", "list")}
# Actions that start a boot: the node may then fetch its install script once.
BOOTS = {("power", "on"), ("power", "cycle"), ("power", "reset")}
MAX_HOSTS = 100_000
# Longer digit runs are no node number, and Python refuses int() past 4,300 digits.
MAX_DIGITS = 64
DIGITS = re.compile(r"[0-9]+")


def _action(command: str, action: str) -> tuple[str, str]:
    if (command, action) not in ACTIONS:
        raise NotFound(f"there is no control action {command} _{action}")
    return command, action


def _top_level_parts(text: str) -> list[str]:
    """``text`` split at the commas outside brackets: ``a[1,2],b`` gives
    ``a[1,2]`` and ``b`` (unbalanced brackets stay in one part for the
    hostlist library to refuse)."""
    parts, depth, start = [], 0, 0
    for position, char in enumerate(text):
        if char == "[":
            depth += 1
        elif char == "]":
            depth = max(depth - 1, 0)
        elif char == "," and depth == 0:
            parts.append(text[start:position])
            start = position + 1
    parts.append(text[start:])
    return parts


def _ok_group(command: str, action: str) -> str:
    """The group successful nodes are listed under (the spec's examples:
    the action for power, ``ok`` for chassis and SEL)."""
    return action if command == "power" else "ok"


class ControlAPI:
    """Handlers under /control."""

    app = Klein()
    common.install_error_handlers(app)

    def __init__(self, store: Any, auth: Auth, ipmi: Any = None, limit: int = 256) -> None:
        self.store = store
        self.auth = auth
        self.ipmi = ipmi
        self.limit = limit

    # -- who may do what -----------------------------------------------------------------
    def _allowed(self, request: Any, command: str, action: str, post: bool) -> tuple[str, str]:
        who = self.auth.admin(request) if post else self.auth.reader(request)
        name = _action(command, action)
        if not who.admin and name not in READ_ONLY:
            raise Forbidden(f"{who.role} tokens may not run {command} {action}")
        return name

    def _client(self) -> Any:
        if self.ipmi is None:
            raise Unavailable(
                "power control is not available: this luna2d runs without an IPMI client"
            )
        return self.ipmi

    # -- nodes to BMC targets -----------------------------------------------------------------
    def _target(self, name: str) -> Target | str:
        """The node's BMC as a Target, or why there is none."""
        access = self.store.bmc_access(name)
        if isinstance(access, str):
            return access
        address, username, password = access
        return Target(
            name, address, Credentials(username.encode("utf-8"), password.encode("utf-8"))
        )

    def _nodes(self, names: list[str]) -> list[str]:
        missing = self.store.missing_nodes(names)
        if missing:
            shown = hostlist.collect_hostlist(missing)
            noun = "node" if len(missing) == 1 else "nodes"
            raise NotFound(f"{noun} {shown} {'does' if len(missing) == 1 else 'do'} not exist")
        return names

    async def _granted(self, name: tuple[str, str], outcomes: dict[str, Outcome]) -> None:
        """Nodes luna2d has just powered on, cycled or reset may fetch their
        install script with secrets once (docs/BOOT.md)."""
        if name in BOOTS:
            started = [node for node, outcome in outcomes.items() if isinstance(outcome, Success)]
            if started:
                await self.store.grant_install(started, "power")

    # -- one node -------------------------------------------------------------------------------
    @app.route("/action/<command>/<node>/_<action>", methods=["GET"])
    async def one(self, request: Any, command: str, node: str, action: str) -> bytes:
        """One node: 200 with the state or SEL, 204 for actions, 500 with the reason on failure."""
        name = self._allowed(request, command, action, post=False)
        self._nodes([node])
        client = self._client()
        target = self._target(node)
        if isinstance(target, str):
            outcome: Outcome = Fault("error", target)
        else:
            outcome = await client.run(target, ACTIONS[name]())
        await self._granted(name, {node: outcome})
        if isinstance(outcome, Fault):
            return message(request, f"{node}: {outcome}", 500)
        if name == ("power", "status"):
            return reply(request, {"control": {"power": outcome.value, "status": outcome.value}})
        if name == ("sel", "list"):
            return reply(request, {"control": {"sel": outcome.value}})
        return no_content(request)

    # -- many nodes --------------------------------------------------------------------------------
    @app.route("/action/<command>/_<action>", methods=["POST"])
    async def many(self, request: Any, command: str, action: str) -> bytes:
        """A hostlist: 200 with the nodes grouped by result once all have answered."""
        name = self._allowed(request, command, action, post=True)
        names = self._hostlist(read_json(request), command, action)
        nodes = self._nodes(names)
        client = self._client()
        outcomes: dict[str, Outcome] = {}
        targets = []
        for node in nodes:
            target = self._target(node)
            if isinstance(target, str):
                outcomes[node] = Fault("error", target)
            else:
                targets.append(target)
        if targets:
            outcomes.update(await client.fan_out(targets, ACTIONS[name], limit=self.limit))
        await self._granted(name, outcomes)
        return reply(
            request, {"control": {command: self._grouped(command, action, names, outcomes)}}
        )

    @staticmethod
    def _hostlist(body: Any, command: str, action: str) -> list[str]:
        """The node names of a ``{"control": {command: {action: {"hostlist": ...}}}}`` body."""
        for path, allowed in (
            (("control",), command),
            (("control", command), action),
            (("control", command, action), "hostlist"),
        ):
            level = envelope(body, *path)
            if not isinstance(level, dict):
                raise Invalid(f"{'.'.join(path)}: expected a JSON object holding {allowed!r}")
            extra = sorted(set(level) - {allowed})
            if extra:
                where = ".".join(path)
                raise Invalid(
                    f"{where}.{extra[0]}: unexpected; the path asks for {command} _{action}"
                )
        text = envelope(body, "control", command, action, "hostlist")
        if not isinstance(text, str) or not text.strip():
            raise Invalid(
                f"control.{command}.{action}.hostlist: expected a hostlist such as node[001-004]"
            )
        longest = max((len(run) for run in DIGITS.findall(text)), default=0)
        if longest > MAX_DIGITS:
            raise Invalid(
                f"control.{command}.{action}.hostlist: a number of {longest} digits; "
                f"node numbers have at most {MAX_DIGITS}"
            )
        names: list[str] = []
        # Part by part, so that many ranges (each within the library's own
        # limit) cannot add up to more names than memory holds.
        for part in _top_level_parts(text.strip()):
            try:
                names.extend(hostlist.expand_hostlist(part))
            except (hostlist.BadHostlist, ValueError) as exc:
                raise Invalid(
                    f"control.{command}.{action}.hostlist: {text[:80]!r} is not a hostlist ({exc})"
                ) from None
            if len(names) > MAX_HOSTS:
                raise Invalid(f"control.{command}.{action}.hostlist: more than {MAX_HOSTS} nodes")
        if not names:
            raise Invalid(f"control.{command}.{action}.hostlist: names no node")
        return list(dict.fromkeys(names))

    @staticmethod
    def _grouped(
        command: str, action: str, names: list[str], outcomes: dict[str, Outcome]
    ) -> dict[str, Any]:
        """Nodes grouped by result, each group as a compressed hostlist."""
        groups: dict[str, list[str]] = {}
        reasons: dict[str, str] = {}
        entries: dict[str, Any] = {}
        for name in names:
            outcome = outcomes[name]
            if isinstance(outcome, Success):
                key = (
                    outcome.value
                    if (command, action) == ("power", "status")
                    else _ok_group(command, action)
                )
                groups.setdefault(str(key), []).append(name)
                if (command, action) == ("sel", "list"):
                    entries[name] = outcome.value
            else:
                groups.setdefault("failed", []).append(name)
                reasons[name] = str(outcome)
        result: dict[str, Any] = {}
        for key, members in groups.items():
            result[key] = {"hostlist": hostlist.collect_hostlist(members)}
        if entries:
            result["ok"]["entries"] = entries
        if reasons:
            result["failed"]["reasons"] = reasons
        return result


__all__ = ["ControlAPI"]
