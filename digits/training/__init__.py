"""A training run: the experiment, the loop, the models, optimizers, strategies, preemption, run folders
and checkpoints, evaluation, sweeps, and the marks that teach refusal."""
