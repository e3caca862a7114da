"""The issue-7 targets: each measured ratio next to its threshold and whether it is met.

Computed from the results JSON alone, so the JSON and the markdown always agree.
"""

from experiments.bench.batches import DROP_FFN, OFFICIAL_PAIRS_PER_S


def targets(results: dict) -> list[dict]:
  """Each issue-7 target with its measured ratio and whether it is met."""
  out = []
  train_rows = results.get('train', [])
  for r in train_rows:
    if r['config'].startswith('ratio_'):
      out.append(
        {
          'target': f'Fourier step <= 0.8 x learned ({r["size"]}, {r["padding"]})',
          'value': r['fourier_over_learned_total'],
          'threshold': 0.8,
          'met': r['fourier_over_learned_total'] <= 0.8,
        }
      )
  for size, b in results.get('breakdown', {}).items():
    share = b['shares_of_fourier_step']['basis forward (jitted alone; it has no backward)']
    out.append(
      {
        'target': f'basis < 2% of a Fourier step ({size}, shape {b["shape"]})',
        'value': share,
        'threshold': 0.02,
        'met': share < 0.02,
      }
    )
    ops, alone = b['hlo_ops_train_step_fourier_basis'], b['hlo_ops_basis_only']
    # The step encodes two sides (a and b): each must compute its basis once.
    out.append(
      {
        'target': f'no recomputation of the basis sin/cos in the compiled step ({size})',
        'value': f'{ops["sine"]} sine + {ops["cosine"]} cosine for 2 sides '
        f'(basis alone: {alone["sine"]} + {alone["cosine"]})',
        'threshold': '2 x basis-alone count',
        'met': ops['sine'] == 2 * alone['sine'] and ops['cosine'] == 2 * alone['cosine'],
      }
    )
  for r in train_rows:
    if (
      r['config'].startswith('ratio_')
      or r['padding'] != 'bucketed'
      or r['config'].endswith(DROP_FFN)
    ):  # the official code's work, a comparison row: not a Table 1 model
      continue
    thr = 0.5 if r['size'].endswith('512') else 0.35
    out.append(
      {
        'target': f'MFU >= {thr:.0%} ({r["config"]}, bucketed, computed tokens)',
        'value': r['mfu_computed'],
        'threshold': thr,
        'met': r['mfu_computed'] >= thr,
      }
    )
  for r in results.get('inference', []):
    out.append(
      {
        'target': f'table inference >= learned ({r["size"]}, {r["padding"]})',
        'value': r['table_over_learned'],
        'threshold': 1.0,
        'met': r['table_over_learned'] >= 1.0,
      }
    )
  bucketed = {r['config']: r for r in train_rows if r.get('padding') == 'bucketed'}
  padded = {r['config']: r for r in train_rows if r.get('padding') == 'padded'}
  for name, ref in OFFICIAL_PAIRS_PER_S.items():
    # The official Fourier model drops its FFN output, so the same work is our Fourier model
    # with the FFN output dropped (``DROP_FFN``); its learned model is the same as ours. The
    # target is the same work on the real length distribution; the rest is context.
    same_work = name + DROP_FFN if name.startswith('fourier') else name
    comparisons = [
      (bucketed, same_work, 'real data bucketed, same work', True),
      (padded, same_work, 'padded to 128, same work', False),
    ]
    if name.startswith('fourier'):
      comparisons += [
        (bucketed, name, "real data bucketed, FFN computed (the paper's model)", False),
        (padded, name, 'padded to 128, FFN computed', False),
      ]
    for table, key, what, is_target in comparisons:
      if key in table:
        v = table[key]['pairs_per_s'] / ref
        label = 'pairs/s >= 3x official' if is_target else 'pairs/s / official'
        out.append(
          {
            'target': f'{label} ({name}; {what})',
            'value': v,
            'threshold': 3.0 if is_target else 'info',
            'met': v >= 3.0 if is_target else None,
          }
        )
  return out
