import subprocess
import sys

from netguard.cli import COMMANDS, main


def test_help_lists_every_command(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for name in COMMANDS:
        assert name in out


def test_unknown_command_exits_2(capsys):
    assert main(["no-such-command"]) == 2
    assert "unknown command" in capsys.readouterr().err


def test_help_does_not_import_subcommand_packages():
    code = "import sys; from netguard.cli import main; main(['--help']); print(sorted(m for m in sys.modules if m.split('.')[0] in ('policygen','waf','visualizer','networkx','fastapi')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "[]"
