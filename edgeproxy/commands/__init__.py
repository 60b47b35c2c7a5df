"""The command line's subcommands, one module per kind of work; the parser is ``edgeproxy.cli``."""
