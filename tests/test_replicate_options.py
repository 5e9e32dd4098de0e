"""``replicate``'s options: one database (-d) or many (--dir/--config),
each refused in words when mixed up, before anything is started."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from bottomless_cli.main import cli


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["replicate", "--dir", ".", "--config", "f.yml"], "--dir or --config, not both"),
        (["-d", "x.db", "replicate", "--dir", "."], "-d names one database"),
        (["replicate", "--dir", ".", "--exit-when-idle"], "go with -d only"),
        (["-d", "x.db", "replicate", "--recursive"], "go with --dir or --config"),
        (["-d", "x.db", "replicate", "--metrics-addr", ":9090"], "go with --dir or --config"),
        (["replicate", "--dir", "/nonexistent/tenants"], "does not exist"),
        (["replicate", "--config", "/nonexistent/fleet.yml"], "cannot read the configuration file"),
    ],
)
def test_mixed_up_options_are_refused(args: list[str], message: str) -> None:
    result = CliRunner().invoke(cli, args)
    assert result.exit_code != 0
    assert message in result.output


def test_a_bad_config_names_its_line_and_key(tmp_path: Path) -> None:
    config = tmp_path / "fleet.yml"
    config.write_text("dbs:\n  - path: a.db\n    batch_intervall_secs: 2\n")
    result = CliRunner().invoke(cli, ["replicate", "--config", str(config)])
    assert result.exit_code == 1
    assert f"{config}:3: batch_intervall_secs: unknown key; did you mean 'batch_interval_secs'?" in result.output
