"""The ``metalayer`` command line: parses, calls one library function per command, prints, maps errors to exit codes.

Global options (``--quiet``, ``--verbose``, ``--log-file``, ``--progress-interval``) may be given
before the command or anywhere after it; ``--version`` prints the version.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from meta_layer_cli import __version__
from meta_layer_cli.commands.common import configure_logging, fail, remember_argv
from meta_layer_cli.runtime.errors import MetalayerError

HELP = """metalayer: make splice-site predictions better than the model that produced them.

Runs a base model (SpliceAI, OpenSpliceAI, Pangolin, or precomputed scores), trains a meta-layer on
(DNA sequence + the base model's tracks) and predicts recalibrated probabilities and variant effects.

Exit codes: 0 ok, 1 runtime failure, 2 usage, 3 bad input data, 4 folder busy, 5 up to date (nothing
done), 130/143 interrupted.
"""

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help=HELP,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        print(f"metalayer {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="only warnings and errors on stderr")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="debug messages, and tracebacks on errors")] = False,
    log_file: Annotated[Path | None, typer.Option("--log-file", help="also write every message to this file")] = None,
    progress_interval: Annotated[
        float | None,
        typer.Option("--progress-interval", min=0, help="seconds between progress lines when stderr is no terminal"),
    ] = None,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="print the version and exit")
    ] = False,
) -> None:
    try:
        configure_logging(quiet, verbose, log_file, progress_interval)
    except MetalayerError as err:  # a --log-file that cannot be written: one line, before any command runs
        fail(str(err), err.exit_code)


from meta_layer_cli.commands import canonical as _canonical  # noqa: E402
from meta_layer_cli.commands import variants as _variants  # noqa: E402

_canonical.register(app)
_variants.register(app)

GLOBAL_FLAGS = {"--quiet", "-q", "--verbose", "-v"}
GLOBAL_VALUED = {"--log-file", "--progress-interval"}


def hoist_global_options(argv: list[str]) -> list[str]:
    """Move global options given after the command to the front, where the root command reads them."""
    front, rest = [], []
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            rest += argv[i:]
            break
        name = arg.split("=", 1)[0]
        if arg in GLOBAL_FLAGS:
            front.append(arg)
        elif name in GLOBAL_VALUED:
            if "=" in arg:
                front.append(arg)
            elif i + 1 < len(argv):
                front += [arg, argv[i + 1]]
                i += 1
            else:
                rest.append(arg)
        else:
            rest.append(arg)
        i += 1
    return front + rest


def main() -> None:  # pragma: no cover - the console entry point
    remember_argv(sys.argv[1:])
    sys.exit(app(args=hoist_global_options(sys.argv[1:]), prog_name="metalayer"))
