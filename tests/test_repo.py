"""The two README commands and CI stay in step."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _readme_commands():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return re.findall(r"```bash\n(.+?)\n```", text)


def test_readme_starts_with_two_commands():
    cmds = _readme_commands()
    assert len(cmds) >= 2
    assert "geoplan demo" in cmds[0]
    assert "pytest" in cmds[1]
    # they come first in the README, right after the title
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert text.index(cmds[1]) < text.index("## ")


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    test_cmd = _readme_commands()[1]
    assert test_cmd in ci.splitlines()


def test_constraints_pin_every_dependency():
    import tomllib

    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if "==" in line:
            name, ver = line.split("==", 1)
            pins[name.strip().lower().replace("_", "-")] = ver.strip()
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())
    deps = meta["project"]["dependencies"] + meta["project"]["optional-dependencies"]["test"]
    for dep in deps:
        name = re.split(r"[<>=!~ \[]", dep, 1)[0].lower().replace("_", "-")
        assert name in pins, f"{name} ist in constraints.txt nicht gepinnt"
