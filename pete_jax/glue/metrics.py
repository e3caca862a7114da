"""GLUE's metric of each task, x 100: accuracy, F1 of the positive class (MRPC, QQP),
Matthews correlation (CoLA), Pearson and Spearman (STS-B). scikit-learn and scipy
compute them."""

import numpy as np
from sklearn import metrics as sk

from pete_jax.evaluate import correlations
from pete_jax.glue.tasks import Task


def score(task: Task, predictions: np.ndarray, labels: np.ndarray) -> dict[str, float]:
  """``{metric: value x 100}`` of one split; predictions are class ids or (STS-B) scores."""
  if task.is_regression:
    return correlations(np.asarray(predictions, np.float64), np.asarray(labels, np.float64))
  predictions, labels = np.asarray(predictions).astype(int), np.asarray(labels).astype(int)
  functions = {
    'accuracy': sk.accuracy_score,
    'f1': sk.f1_score,
    'mcc': sk.matthews_corrcoef,
  }
  return {m: 100.0 * float(functions[m](labels, predictions)) for m in task.metrics}


def combined(result: dict[str, float]) -> float:
  """The mean of a task's metrics: GLUE's single number per task, used to pick a model."""
  return float(np.mean(list(result.values())))
