"""The README's Python API example runs as written and does what it says."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

README = Path(__file__).parents[1] / "README.md"


def readme_example() -> str:
    section = README.read_text().split("## Python API", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_the_readme_example_opens_trains_loads_scores_and_reads_attention(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(readme_example(), "README.md (Python API)", "exec"), namespace)  # noqa: S102
    store, classifier, scores, attention = (
        namespace[k] for k in ("store", "classifier", "scores", "attention")
    )
    assert (tmp_path / "api_demo" / "model.pt").is_file()
    assert list(scores.columns) == ["repertoire_id", "y", "logit", "score"]
    assert scores["repertoire_id"].tolist() == store.repertoires["repertoire_id"].tolist()
    np.testing.assert_allclose(scores["score"], 1 / (1 + np.exp(-scores["logit"])))
    # what the CLI's predict writes for the same repertoire: the same calibrated log-odds
    assert classifier.score(store, 3)[0] == scores["logit"].iloc[3]
    first = store.repertoires["repertoire_id"].iloc[0]
    assert set(attention["repertoire_id"]) == {first}
    assert len(attention) == int(store.offsets[1] - store.offsets[0])
    assert attention["attention_score"].is_monotonic_decreasing
    heads = [c for c in attention.columns if c.startswith("attention_h")]
    assert len(heads) == classifier.network.pooling.num_heads > 1  # one per kept provider
    np.testing.assert_allclose(attention[heads].sum(axis=0), 1.0, rtol=1e-5)  # each a softmax
    np.testing.assert_array_equal(attention["attention"], attention[heads].max(axis=1))
    card = classifier.card()
    assert card["n_train"] + card["n_validation"] == len(store.repertoires)
