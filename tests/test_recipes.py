import pytest

from deepspike.errors import ConfigError
from deepspike.recipes import RECIPES, get_recipe, parse_overrides


def test_registry_lists_the_reference_recipe_with_its_paper():
    recipe = RECIPES["surrogate-lif-mlp"]
    assert recipe.paper.cite and "digits" in recipe.datasets
    assert set(recipe.smoke) <= set(recipe.defaults)


def test_unknown_recipe_names_the_known_ones():
    with pytest.raises(ConfigError, match="surrogate-lif-mlp"):
        get_recipe("no-such-recipe")


def test_set_values_take_the_type_of_the_default():
    recipe = get_recipe("surrogate-lif-mlp")
    got = parse_overrides(["hidden=32", "lr=0.01", "encoding=direct"], recipe)
    assert got == {"hidden": 32, "lr": 0.01, "encoding": "direct"}
    assert isinstance(got["hidden"], int)


@pytest.mark.parametrize(
    ("pair", "message"),
    [
        ("hidden=many", "not a valid int"),
        ("lr=nan", "not a valid float"),
        ("nokey=1", "no setting 'nokey'"),
        ("hidden", "key=value"),
    ],
)
def test_bad_set_values_are_config_errors(pair, message):
    with pytest.raises(ConfigError, match=message):
        parse_overrides([pair], get_recipe("surrogate-lif-mlp"))


def test_profiles_layer_over_defaults():
    recipe = get_recipe("surrogate-lif-mlp")
    smoke = recipe.config({"lr": 0.5}, "smoke")
    assert smoke["epochs"] == recipe.smoke["epochs"] and smoke["lr"] == 0.5
    with pytest.raises(ConfigError, match="profile"):
        recipe.config(None, "medium")
