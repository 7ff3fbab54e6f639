"""The `snce` command line: one subcommand a step (collect, train, select, inspect, atlas, export,
generate, evaluate, workbook), each a thin wrapper over the library.

Every known failure becomes one line on stderr (`snce: error: ...`) and exit status 2; argparse's
own errors too. `SNCE_DEBUG=1` shows the traceback of an unexpected one.
"""

from __future__ import annotations

import argparse
import os
import sys

ERRORS: tuple[type[BaseException], ...] = (ValueError, OSError, RuntimeError)


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (its default prints the whole usage first)."""

    def error(self, message: str):
        print(f"snce: error: {self.prog}: {' '.join(message.split())} (see {self.prog} --help)", file=sys.stderr)
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="snce", description="Single Neuron-based Concept Erasure workbook")
    sub = p.add_subparsers(dest="command", required=True)
    from snce_lib.cli import image_commands, sae_commands

    for add in sae_commands.ADDERS + image_commands.ADDERS:
        add(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    import warnings

    args = build_parser().parse_args(argv)
    # Library warnings (a truncated prompt, say) as one line each, like the errors; restored after.
    saved = warnings.formatwarning
    warnings.formatwarning = lambda message, *_a, **_k: f"snce: warning: {' '.join(str(message).split())}\n"
    try:
        return _run(args)
    finally:
        warnings.formatwarning = saved


def _run(args) -> int:
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("snce: interrupted; rerun the same command to resume", file=sys.stderr)
        return 130
    except ERRORS as exc:
        return _fail(_message(exc))
    except Exception as exc:  # the last net: one line, never a traceback (SNCE_DEBUG=1 shows it)
        if os.environ.get("SNCE_DEBUG"):
            raise
        return _fail(f"unexpected {type(exc).__name__}: {_message(exc)} (set SNCE_DEBUG=1 to see where)")


def _message(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.filename and str(exc.filename) not in str(exc.strerror or ""):
        text = f"{exc.strerror or exc}: {exc.filename}"
    else:
        text = str(exc) or type(exc).__name__
    return " ".join(text.split())  # one line, whatever the exception's text holds


def _fail(message: str) -> int:
    print(f"snce: error: {message}", file=sys.stderr)
    return 2
