"""The ``bilinrec`` command line: ``bilinrec data``, ``als``, ``lrs``, ``claims`` and ``readme-verdict``.

Each command group lives next to the code it drives and registers itself here through an
``add_parser(subparsers)`` function, so the CLI shares its code with the workflow rules.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from bilinrec import __version__

#: Modules that contribute a command group: each defines ``add_parser(subparsers)``.
COMMAND_MODULES = ("bilinrec.cli.data", "bilinrec.cli.als", "bilinrec.cli.lrs", "bilinrec.cli.claims",
                   "bilinrec.cli.readme")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bilinrec", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"bilinrec {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue
        module.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(message)s")
    try:
        return int(args.func(args) or 0)
    except (ValueError, OSError, RuntimeError, LookupError) as exc:
        # Bad input (files, arguments, config): the message names the file, line or key; no traceback.
        if args.verbose:
            logging.exception("traceback (-v)")
        print(f"bilinrec: error: {_message(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("bilinrec: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug: still no traceback unless asked for
        if args.verbose:
            raise
        print(f"bilinrec: internal error ({type(exc).__name__}: {exc}); please report it with the output of "
              f"the same command with -v", file=sys.stderr)
        return 1


def _message(exc: BaseException) -> str:
    """The text of an error; OS errors without a message also get their type (e.g. PermissionError)."""
    text = str(exc)
    if isinstance(exc, OSError) and exc.filename and str(exc.filename) not in text:
        text = f"{exc.filename}: {text}"
    if isinstance(exc, KeyError):
        text = f"missing key {text}"
    return text or type(exc).__name__


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
