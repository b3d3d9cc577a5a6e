"""The paper's optimizer, Adam, with its update done by one fused kernel per variable.

Keras 3's ``Adam.update_step`` is written with backend-neutral ops, so on TensorFlow every
variable update is about a dozen separate elementwise kernels (``g - m``, ``* (1 - beta_1)``,
``assign_add``, ``square``, ``sqrt``, ``/``, ...), each a full pass over memory. The unet_256
generator has 54 M parameters, and a profile of one paper training step put those kernels at
a large share of the busy time (benchmarks/NOTES.md, experiment 12).

:class:`FusedAdam` computes exactly Keras' update (the same formula, the "epsilon hat" form)::

    alpha = lr * sqrt(1 - beta_2**t) / (1 - beta_1**t)
    m += (g - m) * (1 - beta_1)
    v += (g**2 - v) * (1 - beta_2)
    w -= m * alpha / (sqrt(v) + epsilon)

with TensorFlow's ``ResourceApplyAdam`` kernel, which evaluates these four lines in one
multi-threaded pass. It is a drop-in ``keras.optimizers.Adam`` (same arguments, same saved state,
same variables), so a model compiled with it saves and loads like any other. Sparse gradients (an
embedding's) are made dense first, as Keras' own update does implicitly. Anything the kernel
does not cover (another backend, ``amsgrad``, non-float variables) falls back to Keras' own
update.
"""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="pix2pix_tf")
class FusedAdam(keras.optimizers.Adam):
    """``keras.optimizers.Adam`` whose dense TensorFlow update is one fused kernel.

    Same arguments and results as :class:`keras.optimizers.Adam` (up to float rounding); see
    the module docstring for why it exists.
    """

    def update_step(self, gradient, variable, learning_rate):
        import tensorflow as tf

        if isinstance(gradient, tf.IndexedSlices):
            # Keras' update makes an embedding's sparse gradient dense too (its first op,
            # g - m, does); here it is made dense once and goes through the fused kernel.
            gradient = tf.convert_to_tensor(gradient)
        if (
            keras.backend.backend() != "tensorflow"
            or self.amsgrad
            or keras.backend.standardize_dtype(variable.dtype)
            not in ("float16", "bfloat16", "float32", "float64")
        ):
            return super().update_step(gradient, variable, learning_rate)
        dtype = variable.dtype
        local_step = ops.cast(self.iterations + 1, dtype)
        index = self._get_variable_index(variable)
        return tf.raw_ops.ResourceApplyAdam(
            var=_handle(variable),
            m=_handle(self._momentums[index]),
            v=_handle(self._velocities[index]),
            beta1_power=ops.power(ops.cast(self.beta_1, dtype), local_step),
            beta2_power=ops.power(ops.cast(self.beta_2, dtype), local_step),
            lr=ops.cast(learning_rate, dtype),
            beta1=ops.cast(self.beta_1, dtype),
            beta2=ops.cast(self.beta_2, dtype),
            epsilon=ops.cast(self.epsilon, dtype),
            grad=ops.cast(gradient, dtype),
            use_locking=False,
        )


def _handle(variable):
    """The resource handle of a Keras or TensorFlow variable (per replica inside
    ``tf.distribute``'s update calls)."""
    if isinstance(variable, keras.Variable):
        variable = variable.value
    return variable.handle
