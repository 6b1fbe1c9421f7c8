"""The model card's hyperparameters: a pipeline's steps once each, from the params the registry stores."""

from __future__ import annotations

from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from shipyard.cli.hyperparameters import summarise
from shipyard.flavors.sklearn import SklearnFlavor


def stored(model: object) -> dict[str, object]:
    """What the registry keeps for a scikit-learn model (get_params(deep=True), made JSON-safe)."""
    return SklearnFlavor().hyperparameters(model)


def test_a_pipeline_shows_each_step_once_with_its_non_default_settings() -> None:
    summary = summarise(stored(make_pipeline(StandardScaler(), LogisticRegression(C=0.5, max_iter=500))))

    assert summary.components == (
        ("standardscaler", "StandardScaler()"),
        ("logisticregression", "LogisticRegression(C=0.5, max_iter=500)"),
    )
    assert dict(summary.settings) == {"memory": "None", "transform_input": "None", "verbose": "False"}


def test_nested_steps_are_shown_inside_their_parent_and_not_again() -> None:
    preprocess = ColumnTransformer([("num", StandardScaler(), ["a"]), ("cat", OneHotEncoder(), ["b"])])
    summary = summarise(stored(Pipeline([("prep", preprocess), ("model", LogisticRegression())])))

    names = [name for name, _ in summary.components]
    assert names == ["prep", "model"]
    prep = dict(summary.components)["prep"]
    assert prep.startswith("ColumnTransformer(") and "OneHotEncoder()" in prep and "\n" not in prep
    assert not any("__" in key for key, _ in summary.settings)
    assert "steps" not in dict(summary.settings)


def test_a_plain_estimator_keeps_every_parameter() -> None:
    params = stored(LogisticRegression(C=2.0))

    summary = summarise(params)

    assert summary.components == ()
    assert dict(summary.settings)["C"] == "2.0" and len(summary.settings) == len(params)
