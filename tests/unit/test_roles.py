"""Each role's meta/argument_specs.yml describes exactly the variables of its defaults."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

ROLES = sorted(p.parent.parent for p in Path("roles").glob("*/defaults/main.yml"))


def _specs(role: Path) -> dict[str, dict[str, object]]:
    data = yaml.safe_load((role / "meta" / "argument_specs.yml").read_text())
    return dict(data["argument_specs"]["main"]["options"])


@pytest.mark.parametrize("role", ROLES, ids=[r.name for r in ROLES])
def test_argument_specs_name_every_default_and_nothing_else(role: Path) -> None:
    defaults = set(yaml.safe_load((role / "defaults" / "main.yml").read_text()))
    specs = set(_specs(role))
    assert specs == defaults, (
        f"only in defaults: {sorted(defaults - specs)}; only in specs: {sorted(specs - defaults)}"
    )


@pytest.mark.parametrize("role", ROLES, ids=[r.name for r in ROLES])
def test_every_argument_has_a_type_and_a_description(role: Path) -> None:
    lacking = [
        name
        for name, spec in _specs(role).items()
        if not spec.get("type") or not spec.get("description")
    ]
    assert not lacking, f"{role.name}: no type or description for {lacking}"


@pytest.mark.parametrize("role", ROLES, ids=[r.name for r in ROLES])
def test_every_default_has_a_comment(role: Path) -> None:
    lines = (role / "defaults" / "main.yml").read_text().splitlines()
    uncommented = [
        line.split(":")[0]
        for index, line in enumerate(lines)
        if line and not line.startswith((" ", "#", "-")) and not lines[index - 1].startswith("#")
    ]
    assert not uncommented, f"{role.name}: defaults without a comment above: {uncommented}"


@pytest.mark.parametrize("role", ROLES, ids=[r.name for r in ROLES])
def test_every_variable_starts_with_the_role_name(role: Path) -> None:
    names = set(yaml.safe_load((role / "defaults" / "main.yml").read_text()))
    assert all(name.startswith(f"{role.name}_") for name in names), sorted(names)
