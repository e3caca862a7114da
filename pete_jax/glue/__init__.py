"""Fine-tuning a pre-trained PETE encoder on GLUE tasks (and local stand-ins for them).

The paper evaluates only STS-B; the official code's ``--benchmark`` mode fine-tunes
on GLUE. This package does the same for every GLUE task, from TFDS ``glue/<task>``
or from local GLUE files:

* ``tasks``: what each task is (inputs, labels, GLUE's metrics, splits);
* ``readers``: GLUE TSV, the MSR paraphrase files (MRPC) and premise/hypothesis CSVs;
* ``metrics``: GLUE's metric of each task;
* ``head``: the classification head over the pooled sentence vectors;
* ``finetune``: the fine-tuning loop (``python -m pete_jax.glue.main``).
"""
