"""API keys come from the environment or an owner-only file, never from the command line."""

from __future__ import annotations

import pytest

from insitu import cli

SECRET = "s3cretkey0123"


@pytest.mark.parametrize(
    "argv",
    [
        ["runs", "--api-key", SECRET],
        ["export", "some-uid", f"--api-key={SECRET}"],
        ["report", "campaign", "--api-key", SECRET],
        ["serve", "analysis", "--zmq", "127.0.0.1:5578", "--api-key", SECRET],
        ["serve", "catalog", "--api-key", SECRET],
    ],
)
def test_a_key_on_the_command_line_is_refused_without_echoing_it(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "TILED_API_KEY" in err and "--api-key-file" in err
    assert SECRET not in err


def test_a_key_file_others_may_read_is_refused_naming_its_mode(tmp_path):
    from insitu.services.api_key_option import read_secret_file

    path = tmp_path / "key"
    path.write_text(SECRET)
    path.chmod(0o644)
    with pytest.raises(ValueError, match=r"mode 0644.*owner only \(chmod 600"):
        read_secret_file(path)
    path.chmod(0o600)
    assert read_secret_file(path) == SECRET
    path.write_text("  \n")
    with pytest.raises(ValueError, match="is empty"):
        read_secret_file(path)


def test_the_environment_is_the_default_and_the_file_wins(tmp_path, monkeypatch):
    import argparse

    from insitu.services.api_key_option import api_key_from_args

    monkeypatch.setenv("TILED_API_KEY", "fromenv0123")
    assert api_key_from_args(argparse.Namespace(api_key_file=None)) == "fromenv0123"
    path = tmp_path / "key"
    path.write_text(SECRET)
    path.chmod(0o600)
    assert api_key_from_args(argparse.Namespace(api_key_file=str(path))) == SECRET
    monkeypatch.delenv("TILED_API_KEY")
    assert api_key_from_args(argparse.Namespace(api_key_file=None)) is None
