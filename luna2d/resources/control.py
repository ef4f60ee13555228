# -*- test-case-name: tests.ipmi.test_control,tests.clients -*-
"""``/control``: power, identify and SEL through the nodes' BMCs.

``GET /control/action/<command>/<node>/_<action>`` acts on one node and
answers at once. ``POST /control/action/<command>/_<action>`` with
``{"control": {command: {action: {"hostlist": "node[001-004]"}}}}`` starts a
tracked request (luna2d.requests): it answers 200 with a ``request_id`` and
the results of the nodes done within a few seconds (all of them, for a small
healthy hostlist); ``GET /control/status/<request_id>`` hands over the rest
as they land, and 404 once everything was handed over, as the luna CLI and
lpower poll (docs/API.md, "Control").

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
from twisted.internet import defer
from twisted.logger import Logger

from luna2d.errors import Forbidden, Invalid, NotFound, Unavailable
from luna2d.ipmi import commands
from luna2d.ipmi.client import Target
from luna2d.ipmi.session import Credentials, Fault, Outcome, Success
from luna2d.requests import Entry, Progress, Request, RequestTable
from luna2d.resources import common
from luna2d.resources.auth import Auth
from luna2d.resources.common import envelope, message, no_content, read_json, reply
from luna2d.resources.service import Action, ActionLog

# (command, action) -> the IPMI command it runs: luna2d.ipmi.commands' table, for these commands
CONTROL_COMMANDS = ("power", "chassis", "sel")
ACTIONS: dict[tuple[str, str], Callable[[], commands.Command]] = {
    key: factory for key, factory in commands.COMMANDS.items() if key[0] in CONTROL_COMMANDS
}
READ_ONLY = {("power", "status"), ("sel", "list")}
SEL_SEPARATOR = ";;"  # between the SEL lines of a one-node ``sel list`` (the clients' form)
# Actions that start a boot: the node may then fetch its install script once.
BOOTS = {("power", "on"), ("power", "cycle"), ("power", "reset")}
MAX_HOSTS = 100_000
# Longer digit runs are no node number, and Python refuses int() past 4,300 digits.
MAX_DIGITS = 64
DIGITS = re.compile(r"[0-9]+")
# The kind of request /control/status answers for, in the request table.
KIND = "control"
# Seconds a bulk POST waits for its nodes before it answers with what it
# has (the incumbent's figure: the clients poll every 2 s after that).
WAIT = 3.0

log = Logger()


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


def _bucket(command: str, action: str, detail: Any) -> str:
    """The bucket a success is listed under, as the clients read it: the
    state (``on``/``off``) for power status, ``ok`` for the rest."""
    if (command, action) == ("power", "status") and detail in ("on", "off"):
        return str(detail)
    return "ok"


def answer(
    request_id: str, command: str, action: str, entries: list[Entry], progress: Progress | None
) -> dict[str, Any]:
    """A bulk answer in the form the luna CLI and lpower read:
    ``control.<command>.<bucket>`` and ``control.failed`` keyed by node (the
    clients list the keys), with ``request_id`` beside; ``control.hostlist``
    gives each bucket as a compressed hostlist, ``control.entries`` the SEL
    lines of ``sel list`` (both ignored by the clients)."""
    buckets: dict[str, dict[str, Any]] = {}
    failed: dict[str, str] = {}
    members: dict[str, list[str]] = {}
    lines: dict[str, Any] = {}
    for entry in entries:
        if entry.ok:
            bucket = _bucket(command, action, entry.detail)
            shown = entry.detail if bucket != "ok" else f"{command} {action}"
            buckets.setdefault(bucket, {})[entry.item] = shown
            if (command, action) == ("sel", "list"):
                lines[entry.item] = entry.detail
        else:
            bucket = "failed"
            failed[entry.item] = str(entry.detail)
        members.setdefault(bucket, []).append(entry.item)
    control: dict[str, Any] = {
        command: buckets,
        "failed": failed,
        "hostlist": {key: hostlist.collect_hostlist(names) for key, names in members.items()},
    }
    if lines:
        control["entries"] = lines
    body: dict[str, Any] = {"request_id": request_id, "control": control}
    if progress is not None:
        body["progress"] = progress.as_json()
    return body


class ControlAPI:
    """Handlers under /control."""

    app = Klein()
    common.install_error_handlers(app)

    def __init__(
        self,
        store: Any,
        auth: Auth,
        ipmi: Any = None,
        limit: int = 256,
        requests: RequestTable | None = None,
        clock: Any = None,
        wait: float = WAIT,
        actions: ActionLog | None = None,
    ) -> None:
        self.store = store
        self.auth = auth
        self.ipmi = ipmi
        self.limit = limit
        self.clock = clock if clock is not None else auth.clock
        self.requests = requests if requests is not None else RequestTable(self.clock)
        self.wait = wait
        # Bulk requests are listed by /monitor/queue while they run and by
        # /monitor/status once finished (the log the service actions use).
        self.actions = actions if actions is not None else ActionLog()

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
            # one text, entries joined by ";;": the form luna and lnode split
            return reply(request, {"control": {"sel": SEL_SEPARATOR.join(outcome.value)}})
        return no_content(request)

    # -- many nodes --------------------------------------------------------------------------------
    @app.route("/action/<command>/_<action>", methods=["POST"])
    async def many(self, request: Any, command: str, action: str) -> bytes:
        """A hostlist: a tracked request. 200 with its ``request_id`` and
        the results of the nodes that answered within ``wait`` seconds;
        the rest come through ``GET /control/status/<request_id>``."""
        name = self._allowed(request, command, action, post=True)
        names = self._hostlist(read_json(request), command, action)
        client = self._client()
        # Unknown nodes fail alone, as the clients expect: the luna CLI waits
        # for ever on any answer but 200 to this POST.
        missing = set(self.store.missing_nodes(names))
        tracked = self.requests.start(KIND, len(names), {"command": command, "action": action})
        who = self.auth.admin(request)
        shown = hostlist.collect_hostlist(names)
        logged = self.actions.begin(
            who.name,
            "control",
            f"{command} {action} {shown}",
            float(self.clock.seconds()),
            tracked.id,
        )
        targets = []
        for node in names:
            if node in missing:
                self.requests.record(
                    tracked, node, False, str(Fault("error", f"{node} does not exist"))
                )
                continue
            target = self._target(node)
            if isinstance(target, str):
                self.requests.record(tracked, node, False, str(Fault("error", target)))
            else:
                targets.append(target)
        job = defer.ensureDeferred(self._run(tracked, client, name, targets))
        job.addBoth(self._logged, tracked, logged, f"{command} {action} {shown}")
        job.addErrback(lambda failure: log.failure("bulk control {id}", failure, id=tracked.id))
        await self._settle(job)
        reading = self.requests.read(KIND, tracked.id)
        if reading is None:  # dropped meanwhile: nothing more to hand over
            return reply(request, answer(tracked.id, command, action, [], None))
        return reply(
            request, answer(tracked.id, command, action, reading.entries, reading.progress)
        )

    @app.route("/status/<request_id>", methods=["GET"])
    def status(self, request: Any, request_id: str) -> bytes:
        """The results of a bulk request that arrived since the last look
        (200), or 404 once the request is finished and read to its end,
        expired, or never was."""
        self.auth.admin(request)
        reading = self.requests.read(KIND, request_id)
        if reading is None:
            raise NotFound(
                f"no control request {request_id[:80]!r}: it never was, or it has "
                f"finished and every result was handed over, or it expired"
            )
        subject = reading.request.subject
        return reply(
            request,
            answer(
                request_id, subject["command"], subject["action"], reading.entries, reading.progress
            ),
        )

    async def _run(
        self, tracked: Request, client: Any, name: tuple[str, str], targets: list[Target]
    ) -> None:
        """Run the action on every target, at most ``limit`` BMCs at a
        time, recording each result as it lands; then grant the install
        of the nodes that boot, and finish the request."""
        semaphore = defer.DeferredSemaphore(max(1, self.limit))
        started: list[str] = []

        def record(outcome: Outcome, node: str) -> None:
            if isinstance(outcome, Success):
                self.requests.record(tracked, node, True, outcome.value)
                started.append(node)
            else:
                self.requests.record(tracked, node, False, str(outcome))

        try:
            runs = [
                semaphore.run(client.run, target, ACTIONS[name]()).addCallback(record, target.key)
                for target in targets
            ]
            await defer.gatherResults(runs, consumeErrors=True)
            if name in BOOTS and started:
                await self.store.grant_install(started, "power")
        finally:
            self.requests.finish(tracked)

    def _logged(self, result: object, tracked: Request, logged: Action, what: str) -> object:
        """The finished request's summary, for /monitor/status."""
        failed = sorted(entry.item for entry in tracked.entries if not entry.ok)
        done = len(tracked.entries)
        text = f"{what}: {done - len(failed)} of {tracked.total} nodes done"
        if failed:
            text += f"; failed: {hostlist.collect_hostlist(failed)}"
        self.actions.finish(logged, 500 if failed else 200, text)
        return result

    async def _settle(self, job: defer.Deferred[None]) -> None:
        """Wait for ``job`` at most ``wait`` seconds (a small hostlist is
        answered whole in the POST)."""
        if job.called:
            return
        settled: defer.Deferred[None] = defer.Deferred()

        def done(result: object) -> object:
            if not settled.called:
                settled.callback(None)
            return result

        timer = self.clock.callLater(self.wait, done, None)
        job.addBoth(done)
        try:
            await settled
        finally:  # the job runs on if the client went away meanwhile
            if timer.active():
                timer.cancel()

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


__all__ = ["ControlAPI"]
