"""Trains the gradient-boosted trees in src/treescore/model.json and writes samples.json.

Run once, by hand, with scikit-learn installed (its breast-cancer dataset ships with it, so
nothing is fetched): `python train.py`. The bench only reads what this wrote.
"""

import json
from pathlib import Path

from sklearn.datasets import load_breast_cancer
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.model_selection import train_test_split

HERE = Path(__file__).parent


def tree_to_dict(tree):
    t = tree.tree_
    return {
        "feature": t.feature.tolist(),
        "threshold": [round(float(x), 9) for x in t.threshold],
        "left": t.children_left.tolist(),
        "right": t.children_right.tolist(),
        "value": [round(float(v[0][0]), 12) for v in t.value],
    }


def main():
    data = load_breast_cancer()
    x_train, x_test, y_train, y_test = train_test_split(
        data.data, data.target, test_size=0.3, random_state=7, stratify=data.target
    )
    model = GradientBoostingClassifier(
        n_estimators=120, max_depth=3, learning_rate=0.1, random_state=7
    )
    model.fit(x_train, y_train)
    prior = model.init_.class_prior_
    payload = {
        "format": "treescore/1",
        "features": list(data.feature_names),
        "classes": [str(c) for c in data.target_names],
        "learning_rate": model.learning_rate,
        "base_score": float(__import__("math").log(prior[1] / prior[0])),
        "trees": [tree_to_dict(est[0]) for est in model.estimators_],
    }
    (HERE / "src/treescore/model.json").write_text(json.dumps(payload, separators=(",", ":")))
    samples = [
        {name: round(float(v), 6) for name, v in zip(data.feature_names, row)} for row in x_test
    ]
    (HERE / "samples.json").write_text(json.dumps(samples, indent=0))
    print(f"test accuracy {model.score(x_test, y_test):.3f}, {len(samples)} samples")


if __name__ == "__main__":
    main()
