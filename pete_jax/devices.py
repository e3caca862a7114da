"""Where the step runs: multi-host start-up and the one-axis device mesh.

The same training code runs on one CPU, a GPU, a TPU host or a multi-host slice;
what differs is only how many devices the 'data' axis spans.
"""

import os

import jax
from jax.sharding import AxisType


def maybe_initialize_distributed() -> None:
  """``jax.distributed.initialize()`` on multi-process launches only; call before any JAX work.

  TPU pods, SLURM and other clusters JAX knows set their own environment. Any
  other launcher (two processes on one machine, a hand-rolled script) sets
  ``JAX_COORDINATOR_ADDRESS`` (host:port of process 0) with ``JAX_NUM_PROCESSES``
  and ``JAX_PROCESS_ID``, which are passed on. CPU processes exchange data
  through gloo (XLA's CPU client has no cross-process collectives otherwise).
  """
  if jax.distributed.is_initialized():
    return
  markers = ('JAX_COORDINATOR_ADDRESS', 'COORDINATOR_ADDRESS', 'MEGASCALE_COORDINATOR_ADDRESS')
  multi_tpu = ',' in os.environ.get('TPU_WORKER_HOSTNAMES', '')
  multi_slurm = int(os.environ.get('SLURM_NTASKS', '1')) > 1
  if not (any(m in os.environ for m in markers) or multi_tpu or multi_slurm):
    return
  jax.config.update('jax_cpu_collectives_implementation', 'gloo')
  explicit = {}
  if 'JAX_NUM_PROCESSES' in os.environ:
    explicit = {'num_processes': int(os.environ['JAX_NUM_PROCESSES']),
                'process_id': int(os.environ['JAX_PROCESS_ID'])}  # fmt: skip
  jax.distributed.initialize(**explicit)


def data_mesh(devices: list | None = None) -> jax.sharding.Mesh:
  """All (or the given) devices on one 'data' axis.

  Auto axis type: the compiler places the communication of the global-batch
  contrastive loss (an Explicit mesh would refuse ``a @ b.T`` of two
  batch-sharded arrays).
  """
  devices = jax.devices() if devices is None else devices
  return jax.make_mesh((len(devices),), ('data',), axis_types=(AxisType.Auto,), devices=devices)
