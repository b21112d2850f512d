"""scripts/serve_vllm.sh as a user calls it, in its dry run (vLLM is not installed here)."""

from __future__ import annotations

import os
import shlex
import subprocess

from tests.conftest import PROJECT_ROOT

SCRIPT = PROJECT_ROOT / "scripts" / "serve_vllm.sh"


def dry_run(*args: str, **env: str) -> list[str]:
    done = subprocess.run(
        ["bash", str(SCRIPT), *args], env={**os.environ, "DRY_RUN": "1", **env},
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return shlex.split(done.stdout)


def test_arguments_after_the_name_reach_vllm_as_given():
    penalty = '{"repetition_penalty": 1.1}'
    command = dry_run("/models/teacher", "teacher", "--override-generation-config", penalty)
    assert command[:3] == ["vllm", "serve", "/models/teacher"]
    assert command[command.index("--served-model-name") + 1] == "teacher"
    assert command[-2:] == ["--override-generation-config", penalty]


def test_the_name_defaults_to_the_folder_and_settings_come_from_the_environment():
    command = dry_run("/models/Llama-2-13b-chat-hf", QUANTIZATION="fp8", PORT="9000")
    assert command[command.index("--served-model-name") + 1] == "Llama-2-13b-chat-hf"
    assert command[command.index("--quantization") + 1] == "fp8"
    assert command[command.index("--port") + 1] == "9000"


def test_help_is_the_header_and_only_the_header():
    help_ = ["bash", str(SCRIPT), "--help"]
    done = subprocess.run(help_, check=False, capture_output=True, text=True)
    assert done.returncode == 2
    assert done.stdout.startswith("Serve a model with vLLM")
    assert done.stdout.rstrip().endswith("(the project's client retries connection errors).")
