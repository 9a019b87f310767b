"""README's promises: valid Space front matter, and the test command CI actually runs."""

import re
from pathlib import Path

ROOT = Path(__file__).parents[1]
README = (ROOT / "README.md").read_text()


def commands() -> list[str]:
    return [line.strip() for block in re.findall(r"```bash\n(.*?)```", README, re.S) for line in block.splitlines()]


def test_front_matter_is_a_gradio_space():
    front = README.split("---\n")[1]
    fields = dict(line.split(": ", 1) for line in front.splitlines() if ": " in line and not line.startswith(" "))
    assert fields["sdk"] == "gradio" and fields["app_file"] == "app.py"
    import gradio

    assert fields["sdk_version"] == gradio.__version__
    assert (ROOT / fields["app_file"]).is_file()


def test_ci_runs_readmes_test_command_verbatim():
    test_commands = [c for c in commands() if "pytest" in c]
    assert len(test_commands) == 1
    assert test_commands[0] in (ROOT / ".ci" / "run").read_text()


def test_readme_starts_the_app_on_a_shipped_checkpoint():
    assert any(c.endswith("python app.py") for c in commands())
    shipped = [p for p in (ROOT / "checkpoints").iterdir() if (p / "config.json").is_file()]
    assert shipped, "no checkpoint ships: the app would have no default model"
    for folder in shipped:
        assert {"config.json", "model.safetensors", "README.md"} <= {p.name for p in folder.iterdir()}
