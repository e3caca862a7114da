"""experiments/plots.py: the figures built from run records and sweep tables."""

import json
import os

import numpy as np
import pytest

from experiments import plots
from pete_jax import basis


def _record(loss, spearman):
  return {
    'losses': {'steps': [10, 20], 'loss': loss},
    'metrics': {'pretrain': {'spearman': spearman}},
  }


@pytest.mark.filterwarnings('ignore:No artists with labels')  # Axes.plot is replaced below
def test_only_table1_models_go_in_the_table1_curve_panel():
  """``shared`` workdirs also hold ablation and peers runs (GeGLU, SentencePiece ...)."""
  assert plots._curve_panel('shared', 'fourier_2x512') == 0
  assert plots._curve_panel('table1', 'fourier_1x512') == 0
  assert plots._curve_panel('shared', 'fourier_geglu_1x256') == 1
  assert plots._curve_panel('table2_converged_pretrain', 'pete_1x256') == 2


def test_training_curves_average_the_seeds_of_each_run(tmp_path, monkeypatch):
  records = tmp_path / 'runs'
  for sweep, run, seed, loss in (
    ('table1', 'learned_1x256', 0, [7.0, 6.0]),
    ('table1', 'learned_1x256', 1, [9.0, 8.0]),
    ('id_order', 'id_order=random', 0, [8.0, 7.5]),
    ('table2', 'pete_2x64', 0, [9.5, 9.0]),
  ):
    (records / sweep / run).mkdir(parents=True, exist_ok=True)
    (records / sweep / run / f'steps200_seed{seed}.json').write_text(
      json.dumps(_record(loss, 60.0 + seed))
    )
  # A converged run in the same directory is its own curve, in the converged row of panels;
  # a fine-tuning record has no pre-training curve.
  (records / 'table1' / 'learned_1x256' / 'converged_steps2000_seed0.json').write_text(
    json.dumps(_record([5.0, 4.0], 75.0))
  )
  (records / 'glue' / 'learned_1x256' / 'stsb').mkdir(parents=True)
  (records / 'glue' / 'learned_1x256' / 'stsb' / 'lr0.0003_seed0.json').write_text('{"result": {}}')
  plotted = []
  monkeypatch.setattr(
    plots.plt.Axes,
    'plot',
    lambda self, x, y, **kw: plotted.append((self, list(y), kw['label'])),
  )
  out = plots.training_curves(str(records), str(tmp_path / 'curves.png'))
  assert out and (tmp_path / 'curves.png').stat().st_size > 0
  by_label = {label: y for _, y, label in plotted}
  assert by_label['learned_1x256 (n=2, zero-shot STS-B 60.5)'] == [
    8.0,
    7.0,
  ]  # the mean of the two seeds
  titles = {label: ax.get_title() for ax, _, label in plotted}
  assert by_label['learned_1x256 (n=1, zero-shot STS-B 75.0)'] == [5.0, 4.0]
  assert 'converged' in titles['learned_1x256 (n=1, zero-shot STS-B 75.0)']
  assert 'reduced' in titles['learned_1x256 (n=2, zero-shot STS-B 60.5)']
  assert len(plotted) == 4
  assert 'id_order/id_order=random (n=1, zero-shot STS-B 60.0)' in by_label
  assert 'pete_2x64 (n=1, zero-shot STS-B 60.0)' in by_label
  assert plots.training_curves(str(tmp_path / 'none'), str(tmp_path / 'x.png')) is None


def test_ablations_figure_needs_a_reference_and_a_variant(tmp_path):
  row = lambda name, seeds, ref=False: {
    'name': name,
    'reference': ref,
    'per_seed_spearman': dict(enumerate(seeds)),
  }
  table = lambda rows: json.dumps({'rows': rows})
  (tmp_path / 'id_order.json').write_text(table([row('native', [66.4, 66.8], ref=True)]))
  assert plots.ablations(str(tmp_path), str(tmp_path / 'a.png')) is None  # nothing to compare
  (tmp_path / 'id_order.json').write_text(
    table([row('native', [66.4, 66.8], ref=True), row('random', [64.7, 65.1])])
  )
  assert plots.ablations(str(tmp_path), str(tmp_path / 'a.png')) == str(tmp_path / 'a.png')
  assert (tmp_path / 'a.png').stat().st_size > 0


def test_sign_changes_ignore_rounding_noise_at_zeros():
  assert basis.sign_changes(np.array([1.0, -1.0, 1e-6, -1e-6, -0.5, 0.5])) == 2


def test_bases_figure_draws_every_basis(tmp_path, monkeypatch):
  titles = []
  monkeypatch.setattr(plots.plt.Axes, 'set_title', lambda self, title, **kw: titles.append(title))
  out = plots.bases(str(tmp_path / 'b.png'), vocab=500, dim=16, columns=64)
  assert (tmp_path / 'b.png').stat().st_size > 0 and out == str(tmp_path / 'b.png')
  assert len(titles) == len(basis.BASES)
  assert titles[0] == 'fourier: highest feature changes sign 15 times'  # sin(8 pi x) on [-1, 1]


def test_headlines_figure_draws_the_compared_rows_and_nothing_without_tables(tmp_path, monkeypatch):
  from experiments import headlines, tables  # pylint: disable=import-outside-toplevel

  assert plots.headlines_figure(str(tmp_path), str(tmp_path / 'none.png')) is None
  row = lambda name, seeds: {'name': name, 'per_seed_spearman': dict(enumerate(seeds)),
                             'spearman': tables.summarise(seeds), 'reference': name == 'ref'}  # fmt: skip
  rows = tables.compare_to_reference([row('ref', [70.0, 70.4]), row('b', [72.0, 72.5])])
  (tmp_path / 'sweep.json').write_text(json.dumps({'rows': rows}))
  monkeypatch.setattr(headlines, 'HEADLINES', (('b vs ref', 'sweep', 'b'), ('x', 'nothing', 'x')))
  drawn = []
  monkeypatch.setattr(plots.plt.Axes, 'plot', lambda self, *a, **k: drawn.append(a))
  out = plots.headlines_figure(str(tmp_path), str(tmp_path / 'headlines.png'))
  assert out and os.path.getsize(out) > 0
  interval, point = drawn
  assert point[0] == pytest.approx(2.05) and interval[0][0] < 2.05 < interval[0][1]
