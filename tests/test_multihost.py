"""Multi-host for real: two processes on this machine, two fake CPU devices each.

They are started as a launcher would (``JAX_COORDINATOR_ADDRESS``, ``JAX_NUM_PROCESSES``,
``JAX_PROCESS_ID``; see ``pete_jax.devices``), train the smoke model into one shared
workdir, stop half-way and resume, and must end with the parameters of one process
that drives all four devices itself.
"""

import os
import pathlib
import socket
import subprocess
import sys

import jax
import numpy as np

from pete_jax import checkpoint

REPO = pathlib.Path(__file__).resolve().parents[1]
STEPS = ['--config.train.num_steps=6', '--config.train.checkpoint_every_steps=3',
         '--config.train.eval_every_steps=6', '--config.train.log_every_steps=1']  # fmt: skip


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(('localhost', 0))
    return s.getsockname()[1]


def _command(workdir, *overrides):
  return [sys.executable, '-m', 'pete_jax.main', '--config=configs/smoke.py',
          f'--workdir={workdir}', *STEPS, *overrides]  # fmt: skip


def _two_processes(workdir, *overrides) -> list[subprocess.CompletedProcess]:
  port = _free_port()
  procs = []
  for pid in range(2):
    env = dict(os.environ, XLA_FLAGS='--xla_force_host_platform_device_count=2',
               JAX_COORDINATOR_ADDRESS=f'localhost:{port}', JAX_NUM_PROCESSES='2',
               JAX_PROCESS_ID=str(pid))  # fmt: skip
    procs.append(subprocess.Popen(_command(workdir, *overrides), cwd=REPO, env=env, text=True,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE))  # fmt: skip
  results = []
  for p in procs:
    out, err = p.communicate(timeout=600)
    results.append(subprocess.CompletedProcess(p.args, p.returncode, out, err))
  return results


def _params(workdir):
  _, params, _ = checkpoint.load_step(str(workdir))
  return jax.tree.leaves(params)


def test_two_processes_train_resume_and_match_one_process(tmp_path, tiny_data):
  one = tmp_path / 'one_process'
  env = dict(os.environ, XLA_FLAGS='--xla_force_host_platform_device_count=4')
  single = subprocess.run(_command(one), cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=600)  # fmt: skip
  assert single.returncode == 0, single.stderr[-3000:]

  two = tmp_path / 'two_processes'
  first = _two_processes(two, '--config.train.stop_at_step=3')
  for r in first:
    assert r.returncode == 0, r.stderr[-3000:]
  assert 'process 0 of 2' in first[0].stderr and 'process 1 of 2' in first[1].stderr
  assert sorted(int(p.name) for p in (two / 'checkpoints').iterdir() if p.name.isdigit()) == [3]
  second = _two_processes(two)
  for r in second:
    assert r.returncode == 0, r.stderr[-3000:]
    assert 'resumed from step 3' in r.stderr
  one_params, two_params = _params(one), _params(two)
  assert len(one_params) == len(two_params) > 0
  for x, y in zip(one_params, two_params):
    np.testing.assert_allclose(np.asarray(x), np.asarray(y), atol=1e-5)  # reduction order
