"""``--model stack``: registered featurizer + head models combined by a logistic regression fitted inside the training folds.

``cv10 ensemble`` averages finished runs with equal weights, and which runs to combine is picked after
their scores are known. ``stack`` is the honest form of the same idea (stacked generalisation,
Wolpert 1992, via scikit-learn's ``StackingClassifier``): in every outer fold, the members'
out-of-fold probabilities on ``classifier.stack_folds`` inner folds of the *training* folds train the
combiner, then every member is refitted on all training folds. The test fold is only predicted.

Members (``classifier.stack_members``) are any registered models made of a featurizer and a head
(``python -m deeppainter.cv10 models``): each member's features are computed once for every image
(cached as its featurizer says) and sit side by side, one column range per member; each member
is its own head on its columns. A model that trains end to end (``cae``, the backbones) is no member.

Cost: each member is fitted ``stack_folds + 1`` times per outer fold.
"""
from __future__ import annotations

import numpy as np
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import StackingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import Pipeline

from deeppainter.classical import featurize, heads
from deeppainter.models.registry import FoldContext, get_model, stack_member


class StackModel:
    """The members' features computed once for every image (side by side); cv10's model protocol."""

    def __init__(self, member_parts: dict[str, dict[str, np.ndarray]], ccfg, seed: int):
        """``member_parts``: member → its featurizer's features by part (classical.featurize.part_features)."""
        self.members, self.ccfg, self.seed = tuple(member_parts), ccfg, seed
        blocks = [block for parts in member_parts.values() for block in parts.values()]
        self.inputs = np.concatenate(blocks, axis=1).astype("float32")
        self.columns = featurize.columns({name: sum(b.shape[1] for b in parts.values())
                                          for name, parts in member_parts.items()})
        self.member_blocks = {name: featurize.columns({part: b.shape[1] for part, b in parts.items()})
                              for name, parts in member_parts.items()}

    @classmethod
    def from_context(cls, ctx: FoldContext) -> StackModel:
        settings = featurize.FeatureSettings.from_context(ctx)
        return cls({name: featurize.part_features(stack_member(name).featurizer, ctx.images, settings)
                    for name in ctx.cfg.classifier.stack_members}, ctx.cfg.classifier, ctx.seed)

    def member_head(self, name: str) -> Pipeline:
        """Select the member's columns, then the head its own cv10 model uses."""
        select = ("select", ColumnTransformer([(name, "passthrough", self.columns[name])]))
        head = heads.build_head(get_model(name).head, self.ccfg, self.seed, self.member_blocks[name])
        return Pipeline([select, *head.steps])

    def build(self) -> StackingClassifier:
        return StackingClassifier(
            [(name, self.member_head(name)) for name in self.members],
            final_estimator=LogisticRegression(max_iter=1000),
            cv=StratifiedKFold(self.ccfg.stack_folds, shuffle=True, random_state=self.seed),
            stack_method="predict_proba", n_jobs=1)

    def member_weights(self, stack: StackingClassifier) -> dict[str, float]:
        """Each member's share of the combiner's absolute coefficients (how much the stack listens to it)."""
        coef = np.abs(stack.final_estimator_.coef_)
        per_member = np.array([part.sum() for part in np.split(coef, len(self.members), axis=1)])
        return {f"weight_{name}": float(w) for name, w in zip(self.members, per_member / per_member.sum())}

    def fit_predict(self, fold: int, train_idx, test_idx, labels):
        stack = self.build().fit(self.inputs[train_idx], labels[train_idx])
        return stack.predict_proba(self.inputs[test_idx]), self.member_weights(stack), None
