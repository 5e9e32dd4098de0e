from bottomless_cli.main import cli

cli(prog_name="bottomless-cli")
