"""``gpuyard``: the command line. The official ``vastai`` grammar (verb noun), plus ``serve``
and ``admin``. Only argparse is imported here; each command loads what it needs when it runs,
so ``gpuyard --help`` stays instant."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence
from typing import Any

HANDLERS = "gpuyard.cli.commands"

VERBS = {
    "create": "create a template, an instance, a volume, an env var, an API key or an SSH key",
    "search": "search templates, offers or volume offers",
    "show": "show instances, volumes, the user, a template's versions, env vars, API keys, SSH keys, "
            "or the machines you host and their maintenance windows",
    "update": "update a template, an instance, an env var or an SSH key",
    "delete": "delete a template, a volume, an env var, an API key or an SSH key",
    "reset": "replace your API key by a new one",
    "start": "start stopped instances",
    "stop": "stop instances (their disk is kept)",
    "reboot": "restart an instance's container in place",
    "destroy": "destroy instances and their data",
    "label": "set an instance's label",
    "change": "change an interruptible instance's bid",
    "attach": "let an SSH key into one instance",
    "detach": "take an SSH key out of one instance",
    "list": "list a machine you host for rent, or change its prices",
    "unlist": "withdraw a machine you host from rent",
    "schedule": "schedule a maintenance window on a machine you host",
    "cancel": "cancel the maintenance windows of a machine you host",
}


def _common(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("connection and output")
    group.add_argument("--url", default=argparse.SUPPRESS,
                       help="server URL (default: GPUYARD_URL, the config file, "
                            "or http://127.0.0.1:8686)")
    group.add_argument("--api-key", dest="api_key", default=argparse.SUPPRESS,
                       help="API key (default: GPUYARD_API_KEY or the key saved by "
                            "'gpuyard set api-key')")
    group.add_argument("--raw", action="store_true", default=argparse.SUPPRESS,
                       help="print the server's JSON instead of a table")


def _template_flags(p: argparse.ArgumentParser, *, update: bool) -> None:
    d = argparse.SUPPRESS if update else None
    flag = {"action": "store_true", "default": argparse.SUPPRESS if update else False}
    p.add_argument("--name", default=d, help="template name")
    p.add_argument("--image", default=d, help="Docker image path, e.g. vllm/vllm-openai")
    p.add_argument("--image_tag", "--image-tag", dest="image_tag", default=d,
                   help="image tag (default latest)")
    p.add_argument("--login", default=d,
                   help="registry login '-u USER -p PASS REGISTRY' (only the first token is "
                        "stored)")
    p.add_argument("--env", default=d,
                   help="env and ports as Docker flags: '-e VAR=val -p 8000:8000'")
    p.add_argument("--ssh", help="launch with SSH access", **flag)
    p.add_argument("--jupyter", help="launch with Jupyter", **flag)
    p.add_argument("--direct", help="direct (not proxied) SSH/Jupyter connections", **flag)
    p.add_argument("--jupyter-dir", "--jupyter_dir", dest="jupyter_dir", default=d,
                   help="directory to start Jupyter in")
    p.add_argument("--jupyter-lab", "--jupyter_lab", dest="jupyter_lab",
                   help="JupyterLab instead of Jupyter Notebook", **flag)
    p.add_argument("--onstart-cmd", "--onstart_cmd", dest="onstart_cmd", default=d,
                   help="shell commands run when the instance starts")
    p.add_argument("--search_params", "--search-params", dest="search_params", default=d,
                   help="default machine filters, e.g. 'gpu_ram>=23 num_gpus=1'")
    p.add_argument("-n", "--no-default", dest="no_default",
                   help="do not add the default filters verified, external=false, rentable",
                   **flag)
    p.add_argument("--disk_space", "--disk-space", dest="disk_space", default=d,
                   help="recommended disk space in GB")
    p.add_argument("--readme", default=d, help="readme text")
    p.add_argument("--hide-readme", dest="hide_readme", help="hide the readme", **flag)
    p.add_argument("--desc", default=d, help="short description")
    p.add_argument("--public", help="make the template searchable by everyone", **flag)
    p.add_argument("--href", default=d, help="link to the image's documentation")
    p.add_argument("--repo", default=d, help="source repository")


Leaf = Callable[..., argparse.ArgumentParser]
Nouns = dict[str, Any]


def add_offer_commands(nouns: Nouns, leaf: Leaf) -> None:
    so = leaf(nouns["search"], "offers", "offers:search",
              "search offers (GPU bundles to rent), e.g. 'num_gpus=1 gpu_name=RTX_4090 dph<1'")
    so.add_argument("query", nargs="*",
                    help="query: field op value ... (see docs/query-language.md); by default "
                         "only verified, rentable offers on this server")
    so.add_argument("-t", "--type", default="on-demand",
                    help="pricing: on-demand (default), bid (interruptible) or reserved")
    kind = so.add_mutually_exclusive_group()
    kind.add_argument("-i", "--interruptible", dest="type", action="store_const", const="bid",
                      help="interruptible (bid) pricing, same as -t bid")
    kind.add_argument("-b", "--bid", dest="type", action="store_const", const="bid",
                      help="same as -i")
    kind.add_argument("-r", "--reserved", dest="type", action="store_const", const="reserved",
                      help="reserved pricing, same as -t reserved")
    kind.add_argument("-d", "--on-demand", dest="type", action="store_const", const="on-demand",
                      help="on-demand pricing (the default)")
    so.add_argument("-n", "--no-default", dest="no_default", action="store_true",
                    help="do not add the default filters verified, external=false, rentable")
    so.add_argument("--new", action="store_true", help="use the PUT /search/asks/ endpoint")
    so.add_argument("--limit", type=int, help="at most this many offers")
    so.add_argument("--storage", type=float, default=5.0,
                    help="GiB of disk to include in the price (default 5)")
    so.add_argument("-o", "--order", default="score-",
                    help="order, e.g. 'dph_total' or 'num_gpus-,dph+' (- desc, + asc; "
                         "default score-)")


def _create_instance_flags(p: argparse.ArgumentParser, bulk: bool = False) -> None:
    if bulk:
        p.add_argument("ids", type=int, nargs="+", help="offer ids to rent (from 'search offers')")
    else:
        p.add_argument("id", type=int, help="offer id to rent (from 'search offers')")
    p.add_argument("--template_hash", "--template-hash", dest="template_hash",
                   help="start from this template (its hash_id); other options override it")
    p.add_argument("--image", help="Docker image, e.g. vllm/vllm-openai:latest "
                                   "(overrides the template's)")
    p.add_argument("--disk", type=float, default=None,
                   help="local disk in GB (default: the template's recommended disk space, else 10)")
    p.add_argument("--env", help="env and ports as Docker flags, e.g. '-e A=1 -p 8000:8000' "
                                 "(merged into the template's env)")
    p.add_argument("--label", help="a label for the instance")
    start = p.add_mutually_exclusive_group()
    start.add_argument("--onstart", metavar="FILE", help="file whose contents run at start")
    start.add_argument("--onstart-cmd", "--onstart_cmd", dest="onstart_cmd",
                       help="shell commands run at start")
    start.add_argument("--entrypoint", help="command run at start (sent as the onstart script)")
    p.add_argument("--login", help="registry login, e.g. '-u USER -p PASS docker.io'")
    p.add_argument("--user", help="user to run the container as")
    p.add_argument("--ssh", action="store_true", help="SSH access")
    p.add_argument("--jupyter", action="store_true", help="Jupyter (with SSH)")
    p.add_argument("--direct", action="store_true",
                   help="direct (not proxied) SSH/Jupyter; use with --ssh or --jupyter")
    p.add_argument("--jupyter-dir", "--jupyter_dir", dest="jupyter_dir",
                   help="directory to start Jupyter in (implies --jupyter)")
    p.add_argument("--jupyter-lab", "--jupyter_lab", dest="jupyter_lab", action="store_true",
                   help="JupyterLab instead of Notebook (implies --jupyter)")
    p.add_argument("--lang-utf8", dest="lang_utf8", action="store_true",
                   help="set up a C.UTF-8 locale in the container")
    p.add_argument("--python-utf8", dest="python_utf8", action="store_true",
                   help="set Python's locale to C.UTF-8")
    p.add_argument("--extra", help=argparse.SUPPRESS)
    p.add_argument("--force", action="store_true", help="skip sanity checks")
    p.add_argument("--cancel-unavail", dest="cancel_unavail", action="store_true",
                   help="fail if the machine cannot start it now (instead of a stopped instance)")
    p.add_argument("--bid_price", "--bid-price", dest="bid_price", type=float,
                   help="make it interruptible with this bid in $/hour")
    vol = p.add_mutually_exclusive_group()
    vol.add_argument("--create-volume", dest="create_volume", type=int, metavar="VOLUME_ASK_ID",
                     help="rent a new local volume from this volume offer and mount it")
    vol.add_argument("--link-volume", dest="link_volume", type=int, metavar="VOLUME_ID",
                     help="mount one of your existing volumes")
    p.add_argument("--volume-size", dest="volume_size", type=int,
                   help="size of the new volume in GB (default 15; with --create-volume)")
    p.add_argument("--mount-path", dest="mount_path",
                   help="where the volume appears in the container, e.g. /workspace")
    p.add_argument("--volume-label", dest="volume_label",
                   help="a name for the new volume (with --create-volume)")
    if bulk:
        p.add_argument("--args", nargs=argparse.REMAINDER,
                       help="arguments for the image's ENTRYPOINT (must come last)")
        return
    p.add_argument("--wait", action="store_true",
                   help="follow the instance until it runs (or fails), showing each status change")
    p.add_argument("--timeout", type=float, default=600,
                   help="with --wait: give up after this many seconds (default 600)")
    p.add_argument("--dry-run", dest="dry_run", action="store_true",
                   help="print the configuration the server would launch (template merged); "
                        "rent nothing")
    p.add_argument("--args", nargs=argparse.REMAINDER,
                   help="arguments for the image's ENTRYPOINT (must come last)")


def add_instance_commands(verbs: Any, nouns: Nouns, leaf: Leaf) -> None:
    ci = leaf(nouns["create"], "instance", "instances:create",
              "rent an offer and start an instance (optionally from a template)")
    _create_instance_flags(ci)
    cis = leaf(nouns["create"], "instances", "instances:create_many",
               "rent several offers with one configuration")
    _create_instance_flags(cis, bulk=True)

    si = leaf(nouns["show"], "instances", "instances:show_all",
              "your instances, with their address and port mappings")
    si.add_argument("-q", "--quiet", action="store_true", help="print only the instance ids")
    one = leaf(nouns["show"], "instance", "instances:show_one", "one instance in detail")
    one.add_argument("id", type=int, help="instance id")
    one.add_argument("-q", "--quiet", action="store_true", help="print only the id")

    for verb, what in (("start", "start"), ("stop", "stop")):
        p = leaf(nouns[verb], "instance", f"instances:{verb}_one", f"{what} an instance")
        p.add_argument("id", type=int, help="instance id")
        p = leaf(nouns[verb], "instances", f"instances:{verb}_many", f"{what} several instances")
        p.add_argument("ids", type=int, nargs="+", help="instance ids")
    p = leaf(nouns["reboot"], "instance", "instances:reboot", "restart an instance's container")
    p.add_argument("id", type=int, help="instance id")
    p = leaf(nouns["destroy"], "instance", "instances:destroy_one",
             "destroy an instance and its data (asks first unless -y)")
    p.add_argument("id", type=int, help="instance id")
    p.add_argument("-y", "--yes", action="store_true", help="do not ask for confirmation")
    p = leaf(nouns["destroy"], "instances", "instances:destroy_many",
             "destroy several instances (asks first unless -y)")
    p.add_argument("ids", type=int, nargs="+", help="instance ids")
    p.add_argument("-y", "--yes", action="store_true", help="do not ask for confirmation")
    p = leaf(nouns["label"], "instance", "instances:label", "set an instance's label")
    p.add_argument("id", type=int, help="instance id")
    p.add_argument("label", help="the new label")
    p = leaf(nouns["change"], "bid", "instances:change_bid", "change an interruptible bid")
    p.add_argument("id", type=int, help="instance id")
    p.add_argument("--price", type=float, help="new bid in $/hour")
    p = leaf(nouns["update"], "instance", "instances:update",
             "recreate an instance from another template or image")
    p.add_argument("id", type=int, help="instance id")
    p.add_argument("--template_id", "--template-id", dest="template_id", type=int,
                   help="numeric template id")
    p.add_argument("--template_hash_id", "--template-hash-id", dest="template_hash_id",
                   help="template hash_id")
    p.add_argument("--image", help="new Docker image")
    p.add_argument("--args", help="new ENTRYPOINT arguments, as one string")
    p.add_argument("--env", type=_json_object,
                   help='new env as a JSON object, e.g. \'{"A": "1"}\'')
    p.add_argument("--onstart", help="new onstart script")

    ex = leaf(verbs, "execute", "instances:execute",
              "run ls, rm or du in an instance and print the output (no shell)")
    ex.add_argument("id", type=int, help="instance id")
    ex.add_argument("command", help="the command line, e.g. 'ls -l /workspace' (ls, rm or du)")
    sh = leaf(verbs, "ssh", "shell:ssh",
              "open a shell in an instance (or run CMD) with the system ssh client, through the "
              "server's SSH gateway")
    sh.add_argument("id", type=int, help="instance id")
    sh.add_argument("-i", "--identity", help="private key file (default: ssh's own choice)")
    sh.add_argument("-o", dest="ssh_options", action="append", metavar="OPTION",
                    help="an ssh option passed on, e.g. -o StrictHostKeyChecking=accept-new")
    sh.add_argument("command", nargs=argparse.REMAINDER, help="-- CMD: run CMD instead of a shell")
    cp = leaf(verbs, "copy", "shell:copy",
              "copy files to or from an instance over the SSH gateway's SFTP (scp, with its "
              "progress bar), e.g. gpuyard copy ./data 1234:/workspace/data")
    cp.add_argument("src", help="ID:/path on an instance, or a local path")
    cp.add_argument("dst", help="ID:/path on an instance, or a local path")
    cp.add_argument("-i", "--identity", help="private key file (default: ssh's own choice)")
    cp.add_argument("-o", dest="ssh_options", action="append", metavar="OPTION",
                    help="an ssh option passed on, e.g. -o StrictHostKeyChecking=accept-new")

    lg = leaf(verbs, "logs", "instances:logs", "print an instance's logs")
    lg.add_argument("id", type=int, help="instance id")
    lg.add_argument("--tail", type=int, help="only the last N lines")
    lg.add_argument("--filter", help="only lines containing this text")
    lg.add_argument("--daemon-logs", "--daemon_logs", dest="daemon_logs", action="store_true",
                    help="the machine daemon's log instead of the container's")


def add_volume_commands(nouns: Nouns, leaf: Leaf) -> None:
    sv = leaf(nouns["search"], "volumes", "volumes:search",
              "search volume offers (disk space to rent), e.g. 'disk_space>=100'")
    sv.add_argument("query", nargs="*", help="query: field op value ... (see docs/query-language.md)")
    sv.add_argument("-n", "--no-default", dest="no_default", action="store_true",
                    help="do not add the default filters verified, external=false, disk_space>=1")
    sv.add_argument("--limit", type=int, help="at most this many offers")
    sv.add_argument("--storage", type=float, default=1.0,
                    help="GiB to include in the price (default 1)")
    sv.add_argument("-o", "--order", default="score-",
                    help="order, e.g. 'storage_cost,disk_space-' (default score-)")
    cv = leaf(nouns["create"], "volume", "volumes:create", "rent a volume from a volume offer")
    cv.add_argument("id", type=int, help="volume offer id (from 'search volumes')")
    cv.add_argument("-s", "--size", type=float, default=15, help="size in GB (default 15)")
    cv.add_argument("-n", "--name", help="a name for the volume")
    shv = leaf(nouns["show"], "volumes", "volumes:show", "your volumes")
    shv.add_argument("-t", "--type", default="all", choices=["local", "network", "all"],
                     help="which volumes (default all)")
    dv = leaf(nouns["delete"], "volume", "volumes:delete",
              "delete a volume (destroy the instances using it first)")
    dv.add_argument("id", type=int, help="volume id")


def add_account_commands(nouns: Nouns, leaf: Leaf) -> None:
    """Secrets (env vars) and API keys, with the official CLI's names and flags."""
    sev = leaf(nouns["show"], "env-vars", "accounts:show_env_vars",
               "your secrets (env vars every new instance gets); values hidden unless -s")
    sev.add_argument("-s", "--show-values", dest="show_values", action="store_true",
                     help="show the values")
    for verb, what in (("create", "create a secret (env var) every new instance gets"),
                       ("update", "change a secret's value")):
        p = leaf(nouns[verb], "env-var", f"accounts:{verb}_env_var", what)
        p.add_argument("name", help="the variable's name, e.g. HF_TOKEN")
        p.add_argument("value", help="its value")
    p = leaf(nouns["delete"], "env-var", "accounts:delete_env_var", "delete a secret (env var)")
    p.add_argument("name", help="the variable's name")

    ck = leaf(nouns["create"], "api-key", "accounts:create_api_key",
              "create an API key, limited by a permission file (docs/api-keys.md); its text is "
              "printed once")
    ck.add_argument("--name", help="a name for the key")
    ck.add_argument("--permission_file", "--permission-file", dest="permission_file",
                    help='JSON permission document, e.g. {"api": {"misc": {}, "instance_read": {}}} '
                         "(without it: a full key)")
    ck.add_argument("--key_params", "--key-params", dest="key_params",
                    help="text kept with the key (wildcard parameters; not interpreted)")
    leaf(nouns["show"], "api-keys", "accounts:show_api_keys",
         "your API keys: name, created, last used, permissions (never the keys)")
    sk = leaf(nouns["show"], "api-key", "accounts:show_api_key", "one of your API keys")
    sk.add_argument("id", type=int, help="API key id (from show api-keys)")
    dk = leaf(nouns["delete"], "api-key", "accounts:delete_api_key",
              "delete an API key (refused from the next request on)")
    dk.add_argument("id", type=int, help="API key id (from show api-keys)")
    leaf(nouns["reset"], "api-key", "accounts:reset_api_key",
         "replace the key you use by a new one (printed once; the old one stops working)")


def add_ssh_key_commands(verbs: Any, nouns: Nouns, leaf: Leaf) -> None:
    """SSH keys and instance addresses (docs/access.md), with the official CLI's names."""
    key_help = "the public key: its text, or a file holding it (e.g. ~/.ssh/id_ed25519.pub)"
    leaf(nouns["show"], "ssh-keys", "ssh_keys:show_ssh_keys", "your account's SSH public keys")
    ck = leaf(nouns["create"], "ssh-key", "ssh_keys:create_ssh_key",
              "add an SSH public key to your account: it logs into all your instances")
    ck.add_argument("ssh_key", nargs="?", help=key_help + " (default: ~/.ssh/id_ed25519.pub)")
    ck.add_argument("-y", "--yes", action="store_true",
                    help="accepted for the official CLI's sake (gpuyard never replaces a key file)")
    uk = leaf(nouns["update"], "ssh-key", "ssh_keys:update_ssh_key", "replace an SSH key's text")
    uk.add_argument("id", type=int, help="ssh key id (from show ssh-keys)")
    uk.add_argument("ssh_key", help=key_help)
    dk = leaf(nouns["delete"], "ssh-key", "ssh_keys:delete_ssh_key",
              "remove an SSH key from your account (it no longer logs in)")
    dk.add_argument("id", type=int, help="ssh key id (from show ssh-keys)")
    at = leaf(nouns["attach"], "ssh", "ssh_keys:attach_ssh", "let a public key into one instance")
    at.add_argument("instance_id", type=int, help="instance id")
    at.add_argument("ssh_key", help=key_help)
    de = leaf(nouns["detach"], "ssh", "ssh_keys:detach_ssh", "take an attached key out of an instance")
    de.add_argument("instance_id", type=int, help="instance id")
    de.add_argument("ssh_key_id", help="the id attach ssh answered with")
    for scheme in ("ssh", "scp"):
        url = leaf(verbs, f"{scheme}-url", f"ssh_keys:{scheme}_url",
                   f"print an instance's {scheme}://root@HOST:PORT (direct when it runs its own SSH "
                   "server, else through the gateway)")
        url.add_argument("id", type=int, help="instance id")
    # gpuyard ssh ID [-- CMD] and gpuyard copy: add_instance_commands (cli/commands/shell.py)


def _date(text: str) -> float:
    """A date for -e / --sdate, as epoch seconds: epoch seconds, YYYY-MM-DD, 'YYYY-MM-DD HH:MM'
    or MM/DD/YYYY (the official CLI's form), in UTC."""
    from datetime import UTC, datetime

    try:
        return float(text)
    except ValueError:
        pass
    for form in ("%Y-%m-%d", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M", "%m/%d/%Y"):
        try:
            return datetime.strptime(text.strip(), form).replace(tzinfo=UTC).timestamp()
        except ValueError:
            continue
    raise argparse.ArgumentTypeError(
        f"{text!r} is not a date: write epoch seconds (1798675200), YYYY-MM-DD, 'YYYY-MM-DD HH:MM' "
        "or MM/DD/YYYY (all UTC)")


def _machine_ids(text: str) -> list[int]:
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if not parts or not all(p.isdigit() for p in parts):
        raise argparse.ArgumentTypeError(f"{text!r}: write machine ids separated by commas, e.g. 42,43")
    return [int(p) for p in parts]


def add_host_commands(nouns: Nouns, leaf: Leaf) -> None:
    """The host side (docs/hosts.md): the machines you own, their listing and maintenance, with
    the official CLI's names and flags."""
    sm = leaf(nouns["show"], "machines", "hosting:show_machines",
              "the machines you host: GPUs, listing, prices, end date, offers, who rents which GPU, "
              "maintenance windows")
    sm.add_argument("-q", "--quiet", action="store_true", help="print only the machine ids")
    one = leaf(nouns["show"], "machine", "hosting:show_machine",
               "one machine you host in detail (another user's machine is not found)")
    one.add_argument("id", type=int, help="machine id (from show machines)")
    one.add_argument("-q", "--quiet", action="store_true", help="print only the id")

    lm = leaf(nouns["list"], "machine", "hosting:list_machine",
              "list a machine you host for rent, or change its prices: only the flags you give "
              "change; offers follow at once, running rentals keep their price")
    lm.add_argument("id", type=int, help="machine id (from show machines)")
    lm.add_argument("-g", "--price_gpu", "--price-gpu", dest="price_gpu", type=float,
                    metavar="PRICE", help="on-demand price in $/GPU/hour")
    lm.add_argument("-s", "--price_disk", "--price-disk", dest="price_disk", type=float,
                    metavar="PRICE", help="storage price in $/GB/month (instance disks and volumes)")
    lm.add_argument("-u", "--price_inetu", "--price-inetu", dest="price_inetu", type=float,
                    metavar="PRICE", help="upload price in $/GB (shown in offers; not metered)")
    lm.add_argument("-d", "--price_inetd", "--price-inetd", dest="price_inetd", type=float,
                    metavar="PRICE", help="download price in $/GB (shown in offers; not metered)")
    lm.add_argument("-b", "--price_min_bid", "--price-min-bid", dest="price_min_bid", type=float,
                    metavar="PRICE", help="lowest bid accepted in $/GPU/hour (at most the "
                                          "on-demand price)")
    lm.add_argument("-r", "--discount_rate", "--discount-rate", dest="discount_rate", type=float,
                    metavar="FRACTION", help="prepaid credit discount: refused, gpuyard has no "
                                             "prepaid discounts (accepted for the official CLI's sake)")
    lm.add_argument("-m", "--min_chunk", "--min-chunk", dest="min_chunk", type=int, metavar="GPUS",
                    help="the fewest GPUs an offer holds, 1 to 64 (unlike the official CLI, not "
                         "given: unchanged)")
    end = lm.add_mutually_exclusive_group()
    end.add_argument("-e", "--end_date", "--end-date", dest="end_date", type=_date, metavar="DATE",
                     help="listed until DATE: epoch seconds, YYYY-MM-DD, 'YYYY-MM-DD HH:MM' or "
                          "MM/DD/YYYY (UTC)")
    end.add_argument("-l", "--duration", metavar="DURATION",
                     help="listed for this long from now, e.g. '2 weeks', '30 days', '12 hours' "
                          "(at most a year). Without -e or -l a future end date is kept, else "
                          "90 days from now")
    lm.add_argument("-v", "--vol_size", "--vol-size", dest="vol_size", type=int, metavar="GB",
                    help="separate volume offer size: refused, a machine offers its free disk "
                         "as volumes (accepted for the official CLI's sake)")
    lm.add_argument("-z", "--vol_price", "--vol-price", dest="vol_price", type=float,
                    metavar="PRICE", help="separate volume price: refused, volumes cost the "
                                          "storage price -s (accepted for the official CLI's sake)")

    um = leaf(nouns["unlist"], "machine", "hosting:unlist_machine",
              "withdraw every offer of a machine you host (asks first unless -y); running "
              "instances continue")
    um.add_argument("id", type=int, help="machine id (from show machines)")
    um.add_argument("-y", "--yes", action="store_true", help="do not ask for confirmation")

    sc = leaf(nouns["schedule"], "maint", "hosting:schedule_maint",
              "schedule a maintenance window on a machine you host (asks first unless -y): "
              "offers end before it, renters are warned, bids stop while it lasts")
    sc.add_argument("id", type=int, help="machine id (from show machines)")
    sc.add_argument("--sdate", type=_date, required=True, metavar="DATE",
                    help="the window's start: epoch seconds, YYYY-MM-DD, 'YYYY-MM-DD HH:MM' or "
                         "MM/DD/YYYY (UTC)")
    sc.add_argument("--duration", type=float, required=True, metavar="HOURS",
                    help="the window's length in hours, e.g. 0.5 (at most a year)")
    sc.add_argument("--maintenance_category", "--maintenance-category", dest="maintenance_category",
                    default="not provided", metavar="CATEGORY",
                    help="why, shown with the window: e.g. power, internet, disk, gpu, software, "
                         "other (default 'not provided')")
    sc.add_argument("-y", "--yes", action="store_true", help="do not ask for confirmation")

    cm = leaf(nouns["cancel"], "maint", "hosting:cancel_maint",
              "cancel every maintenance window of a machine you host that has not ended (asks "
              "first unless -y); stopped bids resume")
    cm.add_argument("id", type=int, help="machine id (from show machines)")
    cm.add_argument("-y", "--yes", action="store_true", help="do not ask for confirmation")

    sw = leaf(nouns["show"], "maints", "hosting:show_maints",
              "the maintenance windows of your machines that have not ended")
    sw.add_argument("-i", "--ids", type=_machine_ids, metavar="IDS",
                    help="only these machines, comma separated, e.g. 42,43 (default: all yours)")
    sw.add_argument("-q", "--quiet", action="store_true",
                    help="print only the ids of the machines with windows")


def add_access_commands(admin_cmds: Any) -> None:
    db_help = "SQLAlchemy database URL (as for serve)"
    lk = admin_cmds.add_parser(
        "list-keys", help="list API keys (ids, users, dates; never the keys)",
        description="List the API keys: id, user, when made, when revoked, and whether the "
                    "account is disabled. The keys themselves are never stored.")
    lk.set_defaults(handler="access:list_keys")
    lk.add_argument("--user", help="only this user's keys")
    lk.add_argument("--db", help=db_help)

    ck = admin_cmds.add_parser(
        "create-key", help="make another API key for a user and print it",
        description="Make a new API key for an existing user (e.g. after revoking a leaked one); "
                    "print it, alone, on stdout. It is shown only this once.")
    ck.set_defaults(handler="access:create_key")
    ck.add_argument("name", help="user name")
    ck.add_argument("--db", help=db_help)

    rk = admin_cmds.add_parser(
        "revoke-key", help="revoke an API key, or every key of a user",
        description="Revoke one API key by its id (see list-keys), or every key of a user with "
                    "--user. A revoked key is refused at once (401), its console sessions end, "
                    "and it cannot be brought back: create a new key instead.")
    rk.set_defaults(handler="access:revoke_key")
    rk.add_argument("key_id", nargs="?", help="the key's id (from 'gpuyard admin list-keys')")
    rk.add_argument("--user", help="revoke every key of this user instead")
    rk.add_argument("--db", help=db_help)

    du = admin_cmds.add_parser(
        "disable-user", help="refuse a user's keys and console sessions",
        description="Disable a user: their API keys are refused at once (403, 'the account is "
                    "disabled'), and their console sessions end. The keys stay; enable-user "
                    "accepts them again.")
    du.set_defaults(handler="access:disable_user")
    du.add_argument("name", help="user name")
    du.add_argument("--stop", action="store_true",
                    help="also stop the user's running instances (their disks are kept)")
    du.add_argument("--db", help=db_help)

    eu = admin_cmds.add_parser(
        "enable-user", help="accept a disabled user's keys again",
        description="Enable a disabled user: their keys that were not revoked work again "
                    "(console sessions must sign in again).")
    eu.set_defaults(handler="access:enable_user")
    eu.add_argument("name", help="user name")
    eu.add_argument("--db", help=db_help)


def add_machine_commands(admin_cmds: Any) -> None:
    """admin add-machine and probe-machine (docs/hosts.md)."""
    am = admin_cmds.add_parser(
        "add-machine", help="register a machine by probing its Docker engine",
        description="Connect to a Docker engine (unix://, ssh://user@host, or tcp://host:2376 with "
                    "TLS certificates from DOCKER_CERT_PATH when DOCKER_TLS_VERIFY is set), read "
                    "its CPU, RAM, disk and OS, list its GPUs (CDI devices or the nvidia runtime, "
                    "then nvidia-smi in a short-lived container with all GPUs), and register it "
                    "with offers. A host without GPUs registers as CPU-only.")
    am.set_defaults(handler="machines:add_machine")
    am.add_argument("engine_url", help="the engine, e.g. ssh://root@gpu-01 or unix:///var/run/docker.sock")
    am.add_argument("--name", help="the machine's name (default: the host name the engine reports)")
    am.add_argument("--owner", help="the user who hosts it (default: the first administrator)")
    am.add_argument("--dry-run", action="store_true", help="print what was found; register nothing")
    am.add_argument("--image", default=None,
                    help="image the probe containers run (default ubuntu:24.04; it needs sh, df "
                         "and, for nvidia-smi, glibc)")
    am.add_argument("--price-gpu", type=float, default=0.40, help="$/GPU/hour to list it at (default 0.40)")
    am.add_argument("--price-disk", type=float, default=0.10, help="$/GB/month for disk (default 0.10)")
    am.add_argument("--public-ip", help="the address renters reach its ports at")
    am.add_argument("--ports", help="host ports it may publish instance ports on, e.g. 40000-40199")
    am.add_argument("--db", help="SQLAlchemy database URL (as for serve)")

    pm = admin_cmds.add_parser(
        "probe-machine", help="re-read a machine's hardware from its Docker engine",
        description="Probe a docker machine's engine again and update its CPU, RAM, disk, OS and "
                    "GPUs; prices, owner and listing stay.")
    pm.set_defaults(handler="machines:probe_machine")
    pm.add_argument("machine_id", help="numeric machine id")
    pm.add_argument("--image", default=None, help="image the probe containers run (as for add-machine)")
    pm.add_argument("--db", help="SQLAlchemy database URL (as for serve)")


def add_billing_commands(verbs: Any, admin_cmds: Any, leaf: Leaf) -> None:
    db_help = "SQLAlchemy database URL (as for serve)"
    cr = admin_cmds.add_parser(
        "credit", help="grant a user credit (a negative amount takes some back)",
        description="Add AMOUNT dollars to a user's credit; a negative amount takes some back "
                    "(a correction). Charges draw the credit down; with 'serve --credit' a user "
                    "needs a positive balance to launch (docs/usage.md).")
    cr.set_defaults(handler="billing:grant_credit")
    cr.add_argument("name", help="user name")
    cr.add_argument("amount", help="dollars, e.g. 25 or -5")
    cr.add_argument("--note", help="a note shown with the entry in the user's invoices")
    cr.add_argument("--db", help=db_help)

    qu = admin_cmds.add_parser(
        "quota", help="show or set a user's quotas",
        description="Show a user's quotas and current use, or set them: the GPUs and $/hour of "
                    "their instances that run or want to, and the GB of their volumes. A launch, "
                    "start, bid raise or volume over a quota is refused (403 quota_exceeded).")
    qu.set_defaults(handler="billing:set_quota")
    qu.add_argument("name", help="user name")
    qu.add_argument("--max-gpus", dest="max_gpus", type=int, metavar="N", help="GPUs at once")
    qu.add_argument("--max-dph", dest="max_dph", type=float, metavar="X",
                    help="$/hour at once (GPUs and disk, as dph_total)")
    qu.add_argument("--max-volume-gb", dest="max_volume_gb", type=float, metavar="G",
                    help="GB of volumes in all")
    qu.add_argument("--clear", action="store_true",
                    help="remove every limit (before setting the ones given)")
    qu.add_argument("--db", help=db_help)

    us = leaf(verbs, "usage", "billing:show_usage",
              "GPU-hours, disk GB-hours and cost per template, label, machine or user "
              "(administrators see everyone)")
    us.add_argument("--by", choices=["user", "template", "label", "machine"], default="template",
                    help="group by (default template)")
    us.add_argument("--since", help="start: YYYY-MM-DD (UTC) or epoch seconds (default: 30 days ago)")
    us.add_argument("--until", help="end: YYYY-MM-DD (UTC) or epoch seconds (default: now)")


def _json_object(text: str) -> dict:
    import json

    try:
        value = json.loads(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not JSON ({exc}); write e.g. '{{\"A\": \"1\"}}'") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError('must be a JSON object, e.g. \'{"A": "1"}\'')
    return value


def _gateway_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--ssh-host", dest="ssh_host", default="127.0.0.1",
                        help="address users reach the SSH gateway at; shown as ssh_host in "
                             "instance rows (127.0.0.1)")
    parser.add_argument("--ssh-listen", dest="ssh_listen", metavar="ADDRESS",
                        help="address the SSH gateway listens on (default: --ssh-host when it is "
                             "an IP address, else all); 0.0.0.0 in a container whose ports are "
                             "published")
    parser.add_argument("--ssh-ports", dest="ssh_ports", default="2200-2999", metavar="FIRST-LAST",
                        help="the gateway's port range: each instance gets its own port "
                             "(2200-2999)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gpuyard",
        description="gpuyard: a self-hosted GPU cloud that speaks the Vast.ai API. "
        "Run 'gpuyard serve' for the server; the other commands talk to a server.",
    )
    _common(parser)
    verbs = parser.add_subparsers(dest="verb", metavar="COMMAND")

    def leaf(parent, name: str, handler: str, help: str, **kw) -> argparse.ArgumentParser:
        p = parent.add_parser(name, help=help, description=help, **kw)
        p.set_defaults(handler=handler)
        _common(p)
        return p

    serve = verbs.add_parser("serve", help="run the gpuyard server",
                             description="Run the gpuyard API server (migrations run first).")
    serve.set_defaults(handler="server:serve")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    serve.add_argument("--port", type=int, default=8686, help="port to listen on (8686)")
    serve.add_argument("--db", help="SQLAlchemy database URL (default: GPUYARD_DB, or a SQLite "
                                    "file in $XDG_DATA_HOME/gpuyard)")
    serve.add_argument("--runtime", choices=["simulated", "docker"], default="simulated",
                       help="runtime for machines whose fleet entry names none (default simulated)")
    serve.add_argument("--docker-url", dest="docker_url",
                       help="Docker Engine URL for docker machines without their own docker_url "
                            "(default: DOCKER_HOST), e.g. unix:///var/run/docker.sock")
    serve.add_argument("--demo", action="store_true",
                       help="seed demo data and print a ready API key")
    serve.add_argument("--credit", action="store_true",
                       help="enforce credit: launching needs a positive balance, and running "
                            "instances stop when it reaches zero (default: GPUYARD_CREDIT, off)")
    serve.add_argument("--max-body", dest="max_body", type=int, metavar="BYTES",
                       help="refuse request bodies over this size with 413 (default: "
                            "GPUYARD_MAX_BODY, or 1048576 = 1 MiB)")
    serve.add_argument("--graceful-timeout", dest="graceful", type=float, metavar="SECONDS",
                       default=10.0, help="on SIGTERM, seconds requests in flight get to finish "
                                          "before the server exits anyway (10)")
    _gateway_flags(serve)
    serve.add_argument("--no-gateway", dest="no_gateway", action="store_true",
                       help="do not run the SSH gateway in this process (run 'gpuyard gateway' "
                            "instead, or go without SSH access)")
    gw = verbs.add_parser("gateway", help="run the SSH gateway alone",
                          description="Run the SSH gateway alone (docs/access.md): it serves "
                                      "every instance's SSH port from the database's records.")
    gw.set_defaults(handler="server:gateway")
    gw.add_argument("--db", help="SQLAlchemy database URL (as for serve)")
    gw.add_argument("--docker-url", dest="docker_url",
                    help="Docker Engine URL for docker machines without their own docker_url "
                         "(default: DOCKER_HOST)")
    _gateway_flags(gw)
    serve.add_argument("--no-worker", dest="no_worker", action="store_true",
                       help="API and console only: leave the reconciler and the periodic jobs to "
                            "'gpuyard worker' processes (PostgreSQL only)")

    worker = verbs.add_parser(
        "worker", help="run the worker role (reconciler, periodic jobs, engine heartbeats)",
        description="Run the worker role on the database: drive instances toward what their rows "
                    "ask for, run the periodic jobs (out-of-credit stop, orphan sweep, engine "
                    "heartbeats), and answer /healthz, /readyz and /metrics on --port. Any number of "
                    "workers may run on one PostgreSQL database (docs/architecture.md).")
    worker.set_defaults(handler="server:worker")
    worker.add_argument("--host", default="127.0.0.1",
                        help="address of /healthz, /readyz and /metrics (127.0.0.1)")
    worker.add_argument("--port", type=int, default=8687,
                        help="port of /healthz, /readyz and /metrics (8687)")
    for flag in ("--db", "--runtime", "--docker-url", "--credit", "--graceful-timeout"):
        action = next(a for a in serve._actions if flag in a.option_strings)
        kwargs = {"dest": action.dest, "help": action.help, "default": action.default}
        if isinstance(action, argparse._StoreTrueAction):
            kwargs["action"] = "store_true"
        else:
            kwargs.update(type=action.type, choices=action.choices, metavar=action.metavar)
        worker.add_argument(flag, **kwargs)

    admin = verbs.add_parser("admin", help="operator commands on the database")
    admin_cmds = admin.add_subparsers(dest="noun", metavar="ACTION", required=True)
    cu = admin_cmds.add_parser("create-user", help="create a user and print its API key",
                               description="Create a user; print the new API key, alone, "
                                           "on stdout.")
    cu.set_defaults(handler="server:create_user")
    cu.add_argument("name", help="user name")
    cu.add_argument("--db", help="SQLAlchemy database URL (as for serve)")
    cu.add_argument("--admin", action="store_true", help="make the user an administrator")

    lf = admin_cmds.add_parser(
        "load-fleet", help="register or update machines from a YAML fleet file",
        description="Register the machines of a YAML fleet file (see docs/fleet.md). Loading "
                    "the same file again updates the machines by hostname; it never duplicates.")
    lf.set_defaults(handler="fleet:load_fleet")
    lf.add_argument("file", help="the fleet file (YAML with a 'machines' list)")
    lf.add_argument("--db", help="SQLAlchemy database URL (as for serve)")

    ml = admin_cmds.add_parser(
        "machine-lost", help="forget the containers of a machine that is gone for good",
        description="Declare a machine lost: its containers are gone for good (the machine died, "
                    "or was wiped). Destroyed instances whose containers could not be removed, "
                    "because the machine's engine does not answer, stop holding their GPUs and "
                    "host ports, which are offered again. Live instances are left alone.")
    ml.set_defaults(handler="fleet:machine_lost")
    ml.add_argument("machine_id", help="numeric machine id")
    ml.add_argument("--db", help="SQLAlchemy database URL (as for serve)")

    add_machine_commands(admin_cmds)

    rt = admin_cmds.add_parser(
        "recommend-template", help="put a public template on the recommended list",
        description="Put a public template on the recommended list (searchable as "
                    "'recommended == True'), or take it off with --off.")
    rt.set_defaults(handler="server:recommend_template")
    rt.add_argument("template_id", help="numeric template id")
    rt.add_argument("--off", action="store_true", help="take it off the list")
    rt.add_argument("--db", help="SQLAlchemy database URL (as for serve)")

    add_access_commands(admin_cmds)
    add_billing_commands(verbs, admin_cmds, leaf)

    nouns = {
        verb: verbs.add_parser(verb, help=text, description=text).add_subparsers(
            dest="noun", metavar="OBJECT", required=True)
        for verb, text in VERBS.items()
    }

    ct = leaf(nouns["create"], "template", "templates:create", "create a template")
    _template_flags(ct, update=False)

    st = leaf(nouns["search"], "templates", "templates:search",
              "search your templates and public ones, e.g. 'count_created > 100 use_ssh == True'")
    st.add_argument("query", nargs="*", help="query: field op value ... (see docs/query-language.md)")
    st.add_argument("-o", "--order", help="order, e.g. 'count_created-,id' (- desc, + asc)")
    st.add_argument("--limit", type=int, help="at most this many rows")

    ut = leaf(nouns["update"], "template", "templates:update",
              "update a template by hash_id; only the options you give change")
    ut.add_argument("HASH_ID", help="the template's current hash_id")
    _template_flags(ut, update=True)

    dt = leaf(nouns["delete"], "template", "templates:delete",
              "delete a template by --template-id or --hash-id")
    dt.add_argument("--template-id", "--template_id", dest="template_id", type=int,
                    help="numeric template id")
    dt.add_argument("--hash-id", "--hash_id", dest="hash_id", help="template hash_id")

    leaf(nouns["show"], "user", "users:show_user", "show the current user")
    sv = leaf(nouns["show"], "template-versions", "templates:versions",
              "every version (hash) a template has had, newest first")
    sv.add_argument("template_id", help="numeric template id")

    add_offer_commands(nouns, leaf)
    add_instance_commands(verbs, nouns, leaf)
    add_volume_commands(nouns, leaf)
    add_account_commands(nouns, leaf)
    add_ssh_key_commands(verbs, nouns, leaf)
    add_host_commands(nouns, leaf)

    set_ = verbs.add_parser("set", help="save local settings")
    set_nouns = set_.add_subparsers(dest="noun", metavar="SETTING", required=True)
    sk = set_nouns.add_parser("api-key", help="save the API key in the config file")
    sk.set_defaults(handler="users:set_api_key")
    sk.add_argument("key", help="the API key")
    su = set_nouns.add_parser("url", help="save the server URL in the config file")
    su.set_defaults(handler="users:set_url")
    su.add_argument("server_url", help="e.g. http://gpu-box:8686")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 2
    module_name, func_name = handler.split(":")
    module = importlib.import_module(f"{HANDLERS}.{module_name}")
    return int(getattr(module, func_name)(args) or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
