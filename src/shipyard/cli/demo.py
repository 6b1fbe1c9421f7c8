"""``shipyard demo``: a real model on a bundled dataset, registered with its profile and shown."""

from __future__ import annotations

import typer

from shipyard.cli.cards import render_card
from shipyard.cli.context import console, state


def demo(
    name: str = typer.Option("demo", help="Model name to register the demo model under."),
) -> None:
    """Train a classifier on scikit-learn's breast-cancer data, register it and show its model card.

    Example: shipyard demo
    """
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    data = load_breast_cancer(as_frame=True)
    features = data.data.rename(columns=lambda c: c.replace(" ", "_"))
    x_train, x_test, y_train, y_test = train_test_split(
        features, data.target, test_size=0.25, random_state=0, stratify=data.target
    )
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(x_train, y_train)
    auc = float(roc_auc_score(y_test, model.predict_proba(x_test)[:, 1]))
    registry = state.workspace.registry
    version = registry.register(
        model,
        name=name,
        sample_input=x_train.head(50),
        training_data=x_train,
        training_target=y_train,
        metrics={"auc": round(auc, 4)},
        tags={"dataset": "sklearn.breast_cancer"},
        notes="Demo model: logistic regression on the breast-cancer dataset bundled with scikit-learn.",
        source="shipyard demo",
    )
    registry.set_alias(version.ref, "champion")
    loaded = registry.load(f"{name}@champion")
    row = x_test.head(1).to_dict(orient="records")
    console.print(f"registered {version.ref} (test AUC {auc:.3f}) and pointed {name}@champion at it\n")
    render_card(console, registry.get(version.ref))
    console.print(
        f"\nshipyard.load('{name}@champion').predict(one test row) -> {loaded.predict(row).tolist()}, "
        f"probabilities {loaded.predict_proba(row).round(4).tolist()}"
    )
