"""The built-in callbacks: experiment trackers and early stopping (the ``callback`` registry).

A callback is an object with any of ``on_train_start(run)``,
``on_log(run, record)``, ``on_evaluate(run, metrics)``,
``on_checkpoint(run, path)`` and ``on_train_end(run, summary)``
(:mod:`codex_ml.plugins.lifecycle`). Runs choose them with
``callbacks=[tensorboard,csv]``. The trackers write on rank 0 only; each
tracking package comes with an extra of its own (``tensorboard``, ``mlflow``,
``wandb``; ``track`` brings all three) and is imported when its tracker is
built, so a missing one is named before training starts.
"""
