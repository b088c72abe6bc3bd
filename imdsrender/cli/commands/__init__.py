"""One module a subcommand, each with ``run(args) -> int``: they only wire and format.

Imported only when chosen (see :data:`imdsrender.cli.parser.COMMANDS`).
"""
