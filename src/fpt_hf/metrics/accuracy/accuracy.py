"""Accuracy for FPT tasks: fraction of correct predictions; multi-output rows (bit tasks) count every output.
Beside it, the share of the most frequent predicted class: 1.0 means the model answered one class for every input (a
constant predictor, whose accuracy is that class's share of the split, not a sign of learning)."""

import datasets
import evaluate
import numpy as np

_DESCRIPTION = "Accuracy = correct / total over all predictions; multi-output predictions are flattened."
_KWARGS_DESCRIPTION = """
Args:
    predictions: predicted class ids, one per example or a sequence per example (bit tasks).
    references: true class ids, same shape; -100 entries are ignored.
Returns:
    accuracy (float): in [0, 1].
    top_prediction_share (float): the share of the most frequent predicted class, in (0, 1]; 1.0 for a constant predictor.
"""
_CITATION = ""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class Accuracy(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=[
                datasets.Features({"predictions": datasets.Sequence(datasets.Value("int64")), "references": datasets.Sequence(datasets.Value("int64"))}),
                datasets.Features({"predictions": datasets.Value("int64"), "references": datasets.Value("int64")}),
            ],
        )

    def _compute(self, predictions, references):
        predictions = np.asarray(predictions).reshape(-1)
        references = np.asarray(references).reshape(-1)
        if predictions.shape != references.shape:
            raise ValueError(f"predictions and references differ in size: {predictions.shape} vs {references.shape}")
        keep = references != -100
        if not keep.any():
            raise ValueError(f"No predictions to score: all {references.size} references are -100 (ignored).")
        _, counts = np.unique(predictions[keep], return_counts=True)
        return {"accuracy": float((predictions[keep] == references[keep]).mean()), "top_prediction_share": float(counts.max() / keep.sum())}
