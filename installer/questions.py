"""The ordered questions of the interactive installer (the wizard walks them top to bottom).

A question's ``key`` is the dotted config path its answer goes to. ``applies`` hides questions
that do not apply (role only when joining, address only for static, ...). ``default`` is used when
the operator just presses Enter.
"""
from __future__ import annotations

import ipaddress
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from hcicore.errors import FetchError, ValidationError
from hcicore.redact import redact_url

from . import answers as A
from .answers import AnswerError
from .fetch_config import FetchPolicy, fetch_text
from .preflight import layout_min_bytes

if TYPE_CHECKING:
    from .wizard import Wizard

Kind = Literal["choice", "text", "lines", "secret", "confirm", "summary"]
NONE = "none"
KEYS_FETCH = FetchPolicy(budget=20.0, connect_timeout=5.0, read_timeout=10.0)  # an operator is waiting
NO_PROXY_BASE = "localhost,127.0.0.1,0.0.0.0,.svc,.cluster.local"


@dataclass(frozen=True)
class Choice:
    value: str
    label: str


@dataclass
class Question:
    key: str
    prompt: str
    kind: Kind
    parse: Callable[[Any, "Wizard"], Any]
    applies: Callable[["Wizard"], bool] = lambda w: True
    choices: Callable[["Wizard"], list[Choice]] = lambda w: []
    default: Callable[["Wizard"], str] = lambda w: ""
    detail: Callable[["Wizard"], str] = lambda w: ""
    in_config: bool = True


def pick(q: Question, raw: Any, w: "Wizard") -> str:
    """The choice value for ``raw``: a 1-based number or the value itself."""
    text = str(raw).strip()
    opts = q.choices(w)
    if not opts:
        raise AnswerError("nothing to choose from here")
    if text.isdigit() and 1 <= int(text) <= len(opts):
        return opts[int(text) - 1].value
    for c in opts:
        if text == c.value:
            return c.value
    raise AnswerError(f"{text!r} is not one of: {', '.join(c.value for c in opts)}")


def _text(parser: Callable[[str], Any]) -> Callable[[Any, "Wizard"], Any]:
    return lambda raw, w: parser(str(raw))


def _optional(parser: Callable[[str], Any]) -> Callable[[Any, "Wizard"], Any]:
    return lambda raw, w: parser(str(raw)) if str(raw).strip() else None


def _same(raw: Any, w: "Wizard") -> Any:
    return raw


def _disk_choices(w: "Wizard") -> list[Choice]:
    # the value is the disk's stable name when it has one: the config the wizard writes (and its
    # copy for PXE reuse) must name the same disk after a reboot, and unattended installs refuse
    # kernel names on machines with several disks
    return [Choice(d.name_for_config, d.describe()) for d in w.host.disks]


def _disk_default(w: "Wizard") -> str:
    """Preselect a disk only when exactly one is large enough: Enter through the wizard must not
    pick one of several disks (or one too small) on its own."""
    fits = [d for d in w.host.disks if d.size >= layout_min_bytes()]
    return fits[0].name_for_config if len(fits) == 1 else ""


def _data_choices(w: "Wizard") -> list[Choice]:
    install = w.host.disk(w.get("install.device") or "")
    return [Choice(NONE, "none: no data disk")] + [
        Choice(d.name_for_config, d.describe()) for d in w.host.disks if install is None or d.path != install.path]


def _nic_choices(w: "Wizard") -> list[Choice]:
    return [Choice(n.name, n.describe()) for n in w.host.nics]


def _wipe_detail(w: "Wizard") -> str:
    disk = w.host.disk(w.get("install.device") or "")
    held = disk.contents() if disk else ""
    return (f"{w.get('install.device')} holds {held}. Installing erases the whole "
            "disk. Answer no to choose another disk.")


def _has_partitions(w: "Wizard") -> bool:
    """The install disk is not blank: partitions, or a filesystem or table on the whole disk."""
    disk = w.host.disk(w.get("install.device") or "")
    return bool(disk and disk.used)


def _data_has_partitions(w: "Wizard") -> bool:
    disk = w.host.disk(w.get("install.data_device") or "")
    return bool(disk and disk.used)


def _data_wipe_detail(w: "Wizard") -> str:
    disk = w.host.disk(w.get("install.data_device") or "")
    held = disk.contents() if disk else ""
    return (f"{w.get('install.data_device')} holds {held}, maybe the VM storage of an "
            "earlier install. Using it erases the whole disk. Answer no to choose another disk or none.")


def _ssh_keys(raw: Any, w: "Wizard") -> list[str]:
    """Keys typed or pasted, or fetched from one http(s) URL (as Harvester's installer offers)."""
    text = str(raw).strip()
    if "\n" in text or not text.startswith(("http://", "https://")):
        return A.ssh_keys(text)
    try:
        fetched = fetch_text(text, policy=KEYS_FETCH, what="SSH key URL")
    except FetchError as exc:
        raise AnswerError(str(exc)) from None
    try:
        keys = A.ssh_keys(fetched)
    except AnswerError as exc:
        raise AnswerError(f"{redact_url(text)} (fetched): {exc}") from None
    if not keys:
        raise AnswerError(f"{redact_url(text)} serves no key")
    return keys


def _hostname_default(w: "Wizard") -> str:
    nic = next((n for n in w.host.nics if n.name == w.get("node.network.interfaces")), None)
    tail = nic.mac.replace(":", "")[-6:] if nic and nic.mac else "node"
    return f"hci-{tail}"


def _static(w: "Wizard") -> bool:
    return w.get("node.network.method") == "static"


def _joining(w: "Wizard") -> bool:
    return w.get("install.mode") == "join"


def _creating(w: "Wizard") -> bool:
    return w.get("install.mode") == "create"


def _gateway(raw: Any, w: "Wizard") -> str:
    return A.gateway(str(raw), w.get("node.network.address"))


def _dns(raw: Any, w: "Wizard") -> list[str]:
    servers = A.ip_list(str(raw))
    if not servers and _static(w):
        raise AnswerError("a static network needs at least one DNS server, e.g. 10.0.0.1")
    return servers


def _vip(raw: Any, w: "Wizard") -> str:
    if not str(raw).strip():
        raise AnswerError("the cluster VIP is required: a free address on the node's network")
    vip = A.ip(str(raw), "address (the VIP)")
    address = w.get("node.network.address")
    if address and ipaddress.ip_interface(address).ip == ipaddress.ip_address(vip):
        raise AnswerError(f"the VIP {vip} is the node's own address; pick a free address")
    return vip


def _token(raw: Any, w: "Wizard") -> str:
    text = str(raw).strip()
    if not text:
        if _joining(w):
            raise AnswerError("joining needs the cluster token (on a server: "
                              "/var/lib/rancher/k3s/server/node-token)")
        w.generated_token = secrets.token_hex(24)
        return w.generated_token
    return A.token(text)


def _no_proxy_default(w: "Wizard") -> str:
    extra = []
    address = w.get("node.network.address")
    if address:
        extra.append(str(ipaddress.ip_interface(address).network))
    if w.get("cluster.vip"):
        extra.append(w.get("cluster.vip"))
    return ",".join([NO_PROXY_BASE, *extra])


def _password(raw: Any, w: "Wizard") -> str | None:
    first, again = raw
    plain = A.new_password(first, again, required=not w.get("node.ssh_authorized_keys"))
    return None if plain is None else w.hasher(plain)


def _confirm(raw: Any, w: "Wizard") -> bool:
    if not A.yes_no(str(raw)):
        raise AnswerError("answer yes to write the config, or go back to change an answer")
    blocking = w.blocking()
    if blocking:
        raise AnswerError("a check failed; go back (Escape) and fix:\n" + "\n".join(blocking))
    if w.validator is not None:
        try:
            w.validator(w.config())
        except ValidationError as exc:
            raise AnswerError("the config is not valid; go back and fix:\n"
                              + "\n".join(str(p) for p in exc.problems)) from exc
    return True


def _copy_path(raw: Any, w: "Wizard") -> str | None:
    text = str(raw).strip()
    if not text:
        return None
    path = Path(text)
    if not path.is_absolute():
        raise AnswerError(f"{text!r}: give an absolute path, e.g. /mnt/usb/hci-config.yaml")
    if not path.parent.is_dir():
        raise AnswerError(f"directory {path.parent} does not exist (mount the medium first)")
    return text


def build_questions() -> list[Question]:
    Q = Question
    return [
        Q("install.mode", "Create a new cluster or join an existing one?", "choice", _same,
          choices=lambda w: [Choice("create", "create: first node of a new cluster"),
                             Choice("join", "join: add this node to a cluster")],
          default=lambda w: "create"),
        Q("install.role", "Role of this node in the cluster?", "choice", _same, applies=_joining,
          choices=lambda w: [Choice("server", "server: control plane and workloads"),
                             Choice("agent", "agent: workloads only"),
                             Choice("witness", "witness: etcd quorum only, no workloads")],
          default=lambda w: "agent"),
        Q("install.device", "Install disk (erased completely)?", "choice", _same,
          choices=_disk_choices, default=_disk_default),
        Q("install.wipe", "Erase this disk?", "confirm", lambda raw, w: A.yes_no(str(raw)),
          applies=_has_partitions, detail=_wipe_detail),
        Q("install.data_device", "Data disk for VM storage (used whole)?", "choice",
          lambda raw, w: None if raw == NONE else raw, choices=_data_choices,
          default=lambda w: NONE),
        Q("install.data_wipe", "Erase the data disk?", "confirm", lambda raw, w: A.yes_no(str(raw)),
          applies=_data_has_partitions, detail=_data_wipe_detail),
        Q("node.network.interfaces", "Management network interface?", "choice", _same,
          choices=_nic_choices,
          default=lambda w: next((n.name for n in w.host.nics if n.link_up), "")),
        Q("node.network.method", "Address configuration?", "choice", _same,
          choices=lambda w: [Choice("dhcp", "dhcp: address from a DHCP server"),
                             Choice("static", "static: type address and gateway")],
          default=lambda w: "dhcp"),
        Q("node.network.address", "Address with prefix length (e.g. 10.0.0.5/24)?", "text",
          _text(A.cidr_address), applies=_static),
        Q("node.network.gateway", "Default gateway (e.g. 10.0.0.1)?", "text", _gateway,
          applies=_static),
        Q("node.network.dns", "DNS servers (comma separated, blank: from DHCP)?", "text", _dns),
        Q("node.network.vlan_id", "VLAN id (1-4094, blank: untagged)?", "text",
          _optional(A.vlan_id)),
        Q("node.hostname", "Hostname?", "text", _text(A.hostname), default=_hostname_default),
        Q("cluster.vip", "Cluster VIP (a free address for the cluster API)?", "text", _vip,
          applies=_creating),
        Q("cluster.server_url", "Server of the cluster to join (https://HOST:6443)?", "text",
          _text(A.server_url), applies=_joining),
        Q("cluster.token", "Cluster token?", "text", _token,
          detail=lambda w: ("The token of the cluster to join." if _joining(w) else
                            "Nodes join with this token. Blank: generate one.")),
        Q("node.ntp", "NTP servers (comma separated, blank: none)?", "text",
          _text(A.host_list)),
        Q("node.proxy.http", "HTTP proxy (blank: none)?", "text", _optional(A.proxy_url)),
        Q("node.proxy.https", "HTTPS proxy?", "text", _optional(A.proxy_url),
          applies=lambda w: bool(w.get("node.proxy.http")),
          default=lambda w: w.get("node.proxy.http") or ""),
        Q("node.proxy.no_proxy", "Hosts and networks reached without the proxy?", "text",
          lambda raw, w: ",".join(A.words(str(raw))) or None,
          applies=lambda w: bool(w.get("node.proxy.http")), default=_no_proxy_default),
        Q("node.ssh_authorized_keys", "SSH public keys (one per line, blank line ends)?",
          "lines", _ssh_keys, detail=lambda w: ("Paste keys, or give one http(s) URL that serves them "
                                               "(e.g. https://github.com/USER.keys). Blank: no SSH "
                                               "(the node's sshd takes keys only).")),
        Q("node.password_hash", "Login password (typed twice, not shown)?", "secret",
          _password, detail=lambda w: ("Blank: no password (SSH key only)."
                                       if w.get("node.ssh_authorized_keys") else "")),
        Q("confirm", "Write this config and go on?", "summary", _confirm, in_config=False),
        Q("copy_path", "Save a copy for PXE reuse to (path, blank: no copy)?", "text",
          _copy_path, in_config=False),
    ]
