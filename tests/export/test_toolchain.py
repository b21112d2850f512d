import os
import re
import time

import pytest
import transformers

from product_descgen.export import toolchain


def test_work_meanwhile_runs_while_the_command_does(tmp_path):
    marker = tmp_path / "written by the command"
    command = [toolchain.python(), "-c", f"import time; time.sleep(1); open({str(marker)!r}, 'w')"]
    seen = []
    toolchain.run(
        command, tmp_path / "log", "a command", meanwhile=lambda: seen.append(marker.exists())
    )
    assert seen == [False]  # done before the command ended
    assert marker.exists()  # and the command was waited for


def test_a_failed_command_raises_with_its_log(tmp_path):
    command = [toolchain.python(), "-c", "import sys; print('the reason'); sys.exit(3)"]
    with pytest.raises(toolchain.ExportToolchainError, match=r"(?s)exit 3.*the reason"):
        toolchain.run(command, tmp_path / "log", "a command", meanwhile=lambda: None)


def test_failed_work_meanwhile_stops_the_command(tmp_path):
    pid_file = tmp_path / "pid"
    command = [toolchain.python(), "-c",
               f"import os, time; open({str(pid_file)!r}, 'w').write(str(os.getpid())); "
               "time.sleep(60)"]  # fmt: skip

    def fail() -> None:
        while not pid_file.is_file() or not pid_file.read_text():
            time.sleep(0.05)
        raise ValueError("the tokenizer failed")

    with pytest.raises(ValueError, match="tokenizer"):
        toolchain.run(command, tmp_path / "log", "a command", meanwhile=fail)
    with pytest.raises(ProcessLookupError):  # killed and reaped, not left running
        os.kill(int(pid_file.read_text()), 0)


def test_package_versions_are_read_from_the_export_environment():
    [init] = toolchain.venv_dir().glob("lib/python*/site-packages/transformers/__init__.py")
    [declared] = re.findall(r'^__version__ = "([^"]+)"', init.read_text(), re.MULTILINE)
    assert toolchain.package_version("transformers") == declared
    assert declared != transformers.__version__  # the export environment's own, not ours
