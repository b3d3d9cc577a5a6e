"""The reference learning-rate policy: constant, then linear decay to zero.

The reference code keeps the learning rate constant for ``n_epochs`` (100) and then decays it
linearly over ``n_epochs_decay`` (100) more epochs, stepping once per epoch:

    lr(epoch) = base * (1 - max(0, epoch + 1 - n_epochs) / (n_epochs_decay + 1))

``LinearDecay`` computes exactly that from the optimizer's step counter, so it serialises with the
optimizer and a resumed run continues the schedule where it stopped.
"""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="pix2pix_tf")
class LinearDecay(keras.optimizers.schedules.LearningRateSchedule):
    """Constant for ``n_epochs`` epochs, then linearly to zero over ``n_epochs_decay``.

    Args:
        initial_learning_rate: the constant rate (paper: 2e-4).
        n_epochs: epochs at the constant rate (reference: 100).
        n_epochs_decay: epochs of linear decay (reference: 100).
        steps_per_epoch: optimizer steps per epoch (the number of training batches).
        per_step: ``False`` (default) changes the rate once per epoch, exactly like the reference;
            ``True`` decays smoothly every step along the same line, which avoids the small
            per-epoch jumps when epochs are few and long.
    """

    def __init__(self, initial_learning_rate=2e-4, n_epochs=100, n_epochs_decay=100,
                 steps_per_epoch=1, per_step=False, name="linear_decay"):
        if steps_per_epoch < 1:
            raise ValueError(f"steps_per_epoch must be >= 1, got {steps_per_epoch}.")
        if n_epochs < 0 or n_epochs_decay < 0:
            raise ValueError("n_epochs and n_epochs_decay must be >= 0.")
        self.initial_learning_rate = float(initial_learning_rate)
        self.n_epochs = int(n_epochs)
        self.n_epochs_decay = int(n_epochs_decay)
        self.steps_per_epoch = int(steps_per_epoch)
        self.per_step = bool(per_step)
        self.name = name

    def __call__(self, step):
        step = ops.cast(step, "float32")
        epoch = step / self.steps_per_epoch
        if not self.per_step:
            epoch = ops.floor(epoch)
        decayed = ops.maximum(0.0, epoch + 1.0 - self.n_epochs) / (self.n_epochs_decay + 1.0)
        return self.initial_learning_rate * ops.maximum(0.0, 1.0 - decayed)

    def get_config(self):
        return dict(
            initial_learning_rate=self.initial_learning_rate,
            n_epochs=self.n_epochs,
            n_epochs_decay=self.n_epochs_decay,
            steps_per_epoch=self.steps_per_epoch,
            per_step=self.per_step,
            name=self.name,
        )
