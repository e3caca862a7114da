"""Where the step runs: multi-host start-up and the one-axis device mesh.

The same training code runs on one CPU, a GPU, a TPU host or a multi-host slice;
what differs is only how many devices the 'data' axis spans.
"""

import os

import jax
from jax.sharding import AxisType


def maybe_initialize_distributed() -> None:
  """``jax.distributed.initialize()`` on multi-host clusters only (env set by the launcher)."""
  markers = ('JAX_COORDINATOR_ADDRESS', 'COORDINATOR_ADDRESS', 'MEGASCALE_COORDINATOR_ADDRESS')
  multi_tpu = ',' in os.environ.get('TPU_WORKER_HOSTNAMES', '')
  multi_slurm = int(os.environ.get('SLURM_NTASKS', '1')) > 1
  if (
    any(m in os.environ for m in markers) or multi_tpu or multi_slurm
  ) and not jax.distributed.is_initialized():
    jax.distributed.initialize()


def data_mesh(devices: list | None = None) -> jax.sharding.Mesh:
  """All (or the given) devices on one 'data' axis.

  Auto axis type: the compiler places the communication of the global-batch
  contrastive loss (an Explicit mesh would refuse ``a @ b.T`` of two
  batch-sharded arrays).
  """
  devices = jax.devices() if devices is None else devices
  return jax.make_mesh((len(devices),), ('data',), axis_types=(AxisType.Auto,), devices=devices)
