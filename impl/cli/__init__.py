"""The `nanvix` command line (main.py assembles the subcommands)."""
