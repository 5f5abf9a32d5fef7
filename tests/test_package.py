"""The package's public surface: every exported name resolves, the CLI lists its commands."""

from __future__ import annotations

import mtaffect


def test_every_lazy_export_resolves():
    for name in mtaffect._LAZY:
        assert getattr(mtaffect, name) is not None, name
    assert set(mtaffect._LAZY) <= set(dir(mtaffect))


def test_cli_lists_every_command(capsys):
    from mtaffect.cli.main import COMMAND_MODULES, build_parser

    parser = build_parser()
    help_text = parser.format_help()
    commands = ("run", "report", "data", "train", "evaluate", "predict", "demo", "weak-label", "extract")
    for command in commands:
        assert f"    {command} " in help_text, command
    assert len(COMMAND_MODULES) == len(commands)
