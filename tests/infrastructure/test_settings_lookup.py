import pytest

from stacks.settings import settings_for


def test_unknown_environment_lists_the_known_ones():
    with pytest.raises(ValueError) as raised:
        settings_for("nope")
    assert str(raised.value) == "unknown environment 'nope'; known environments: dev, prod, staging"


@pytest.mark.parametrize("name", ["dev", "staging", "prod"])
def test_known_environments(name):
    assert settings_for(name).stack_name == f"DialPipeline-{name}"
