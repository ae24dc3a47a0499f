"""The subcommands of the ``fastconv`` command, one module each.

Every module has ``add_parser(subparsers)``, which declares the subcommand
and its options and returns its parser, and ``run(args) -> exit code``, which
does the work; :mod:`fastconv.cli` lists them and dispatches. Errors meant
for the user are raised as :class:`fastconv.commands._common.CLIError` (one
line on stderr, exit code 2).
"""
