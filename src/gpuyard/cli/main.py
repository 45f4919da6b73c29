"""``gpuyard``: the command line. The official ``vastai`` grammar (verb noun), plus ``serve``
and ``admin``. Only argparse is imported here; each command loads what it needs when it runs,
so ``gpuyard --help`` stays instant."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

HANDLERS = "gpuyard.cli.commands"


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
    serve.add_argument("--runtime", choices=["simulated"], default="simulated",
                       help="default instance runtime")
    serve.add_argument("--demo", action="store_true",
                       help="seed demo data and print a ready API key")

    admin = verbs.add_parser("admin", help="operator commands on the database")
    admin_cmds = admin.add_subparsers(dest="noun", metavar="ACTION", required=True)
    cu = admin_cmds.add_parser("create-user", help="create a user and print its API key",
                               description="Create a user; print the new API key, alone, "
                                           "on stdout.")
    cu.set_defaults(handler="server:create_user")
    cu.add_argument("name", help="user name")
    cu.add_argument("--db", help="SQLAlchemy database URL (as for serve)")
    cu.add_argument("--admin", action="store_true", help="make the user an administrator")

    rt = admin_cmds.add_parser(
        "recommend-template", help="put a public template on the recommended list",
        description="Put a public template on the recommended list (searchable as "
                    "'recommended == True'), or take it off with --off.")
    rt.set_defaults(handler="server:recommend_template")
    rt.add_argument("template_id", help="numeric template id")
    rt.add_argument("--off", action="store_true", help="take it off the list")
    rt.add_argument("--db", help="SQLAlchemy database URL (as for serve)")

    create = verbs.add_parser("create", help="create a template")
    create_nouns = create.add_subparsers(dest="noun", metavar="OBJECT", required=True)
    ct = leaf(create_nouns, "template", "templates:create", "create a template")
    _template_flags(ct, update=False)

    search = verbs.add_parser("search", help="search templates")
    search_nouns = search.add_subparsers(dest="noun", metavar="OBJECT", required=True)
    st = leaf(search_nouns, "templates", "templates:search",
              "search your templates and public ones, e.g. 'count_created > 100 use_ssh == True'")
    st.add_argument("query", nargs="*", help="query: field op value ... (see docs/query-language.md)")
    st.add_argument("-o", "--order", help="order, e.g. 'count_created-,id' (- desc, + asc)")
    st.add_argument("--limit", type=int, help="at most this many rows")

    update = verbs.add_parser("update", help="update a template")
    update_nouns = update.add_subparsers(dest="noun", metavar="OBJECT", required=True)
    ut = leaf(update_nouns, "template", "templates:update",
              "update a template by hash_id; only the options you give change")
    ut.add_argument("HASH_ID", help="the template's current hash_id")
    _template_flags(ut, update=True)

    delete = verbs.add_parser("delete", help="delete a template")
    delete_nouns = delete.add_subparsers(dest="noun", metavar="OBJECT", required=True)
    dt = leaf(delete_nouns, "template", "templates:delete",
              "delete a template by --template-id or --hash-id")
    dt.add_argument("--template-id", "--template_id", dest="template_id", type=int,
                    help="numeric template id")
    dt.add_argument("--hash-id", "--hash_id", dest="hash_id", help="template hash_id")

    show = verbs.add_parser("show", help="show the user, or a template's versions")
    show_nouns = show.add_subparsers(dest="noun", metavar="OBJECT", required=True)
    leaf(show_nouns, "user", "users:show_user", "show the current user")
    sv = leaf(show_nouns, "template-versions", "templates:versions",
              "every version (hash) a template has had, newest first")
    sv.add_argument("template_id", help="numeric template id")

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
