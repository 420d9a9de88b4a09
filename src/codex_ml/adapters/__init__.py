"""Adapters: what a fine-tuning run trains of a model it did not build from scratch.

An adapter (the ``adapter`` registry, ``adapter=KEY`` on the command line)
turns a built model into the model to train and knows how to save, load and
merge what it trains (:class:`codex_ml.protocols.Adapter`). The built-in ones:

- ``lora`` (:mod:`.lora`): low-rank adapters through ``peft`` on the linear
  layers, the base frozen;
- ``freeze`` (:mod:`.freeze`): the parameters whose names match some globs
  train, everything else is frozen.

Nothing here is imported by the trainer: the run applies the adapter to the
model it built, and checkpoints ask it what to save
(:mod:`codex_ml.training.checkpoint.trainable`).
"""
