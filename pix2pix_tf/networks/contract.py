"""The generator contract: what every translator network states about itself.

Inference, evaluation and export need four facts about a generator, and read them here rather
than guessing from its layers:

- its inputs, by name: always ``"image"`` (``(batch, H, W, C)`` in [-1, 1]), plus any
  conditions a generator takes (for example an instruction's token ids);
- the image's channel count and the output's channel count;
- its *size multiple*: height and width must be divisible by it (a U-Net with ``num_downs``
  halvings needs ``2**num_downs``; the ResNet generator 4; a fully convolutional net with no
  skips may accept anything, 1).

:class:`Generator` is a functional ``keras.Model`` (the subclassing pattern of Keras'
``Model`` documentation) that carries the size multiple in its config, so the contract travels
inside every saved ``.keras`` file. Builders create their layers with the functional API and
return ``Generator(inputs, outputs, size_multiple=...)``. Calling it accepts a bare image tensor
or a dict of named inputs, and rejects images it cannot process with a message that names the
fix, before they reach the network's layers.
"""

import keras

from pix2pix_tf.core.layers import INFERENCE_MODES, set_inference_mode, walk_layers

#: The name of the image input every generator has.
IMAGE = "image"


def size_message(network, multiple, height, width):
    """The error for an image of ``height`` x ``width`` that ``network`` cannot take."""
    def near(v):
        low = (v // multiple) * multiple
        return f"{low} or {low + multiple}" if low else f"{multiple}"

    return (f"The {network} needs height and width divisible by {multiple}, but got "
            f"{height}x{width}. Sizes that work near yours: height {near(height)}, width "
            f"{near(width)}. Fix: crop or pad the image to such a size (predict and the "
            "'encoded' serving signature pad for you), or build the generator with a smaller "
            "num_downs.")


def channels_message(network, expected, got, shape):
    return (f"The {network} was built for {expected}-channel images but got {got} channels "
            f"(input shape {tuple(shape)}). Fix: convert the images (e.g. grayscale <-> RGB) or "
            f"build the model with input_channels={got}.")


def image_of(inputs):
    """The image tensor of model inputs given as a bare tensor or a dict of named inputs."""
    if isinstance(inputs, dict):
        if IMAGE not in inputs:
            raise ValueError(f"Inputs given as a dict need an {IMAGE!r} entry; got keys "
                             f"{sorted(inputs)}.")
        return inputs[IMAGE]
    return inputs


@keras.saving.register_keras_serializable(package="pix2pix_tf")
class Generator(keras.Model):
    """A translator network with an explicit contract (see the module docstring).

    Args:
        inputs: the ``keras.Input`` named ``"image"``, or a dict of named inputs holding it.
        outputs: the translated image, ``(batch, H, W, output_channels)``.
        size_multiple: height and width of the image must be divisible by this.
    """

    def __init__(self, inputs, outputs, name=None, *, size_multiple=1, **kwargs):
        super().__init__(inputs, outputs, name=name, **kwargs)
        self.size_multiple = int(size_multiple)
        names = self.input_names
        if IMAGE not in names:
            raise ValueError(f"A generator needs an input named {IMAGE!r} "
                             f"(keras.Input(..., name={IMAGE!r})); got inputs {names}.")
        if len(self.image_input.shape) != 4 or len(self.outputs) != 1 \
                or len(self.outputs[0].shape) != 4:
            raise ValueError("A generator maps a (batch, H, W, C) image to one (batch, H, W, C) "
                             "image.")
        if self.size_multiple < 1:
            raise ValueError(f"size_multiple must be >= 1, got {size_multiple}.")

    # ------------------------------------------------------------------------- the contract
    @property
    def input_names(self):
        return [tensor.name for tensor in self.inputs]

    @property
    def image_input(self):
        return self.inputs[self.input_names.index(IMAGE)]

    @property
    def condition_inputs(self):
        """The non-image inputs, ``{name: KerasTensor}`` (empty for plain pix2pix)."""
        return {t.name: t for t in self.inputs if t.name != IMAGE}

    @property
    def input_channels(self):
        return self.image_input.shape[-1]

    @property
    def output_channels(self):
        return self.outputs[0].shape[-1]

    @property
    def image_size(self):
        """``(height, width)`` if fixed at build time, else ``(None, None)``."""
        return tuple(self.image_input.shape[1:3])

    @property
    def inference_mode(self):
        """The inference mode of the generator's dropout and normalisation layers."""
        modes = {layer.inference_mode for layer in walk_layers(self)
                 if getattr(layer, "inference_mode", None) in INFERENCE_MODES}
        return modes.pop() if len(modes) == 1 else ("paper" if not modes else "mixed")

    @inference_mode.setter
    def inference_mode(self, mode):
        set_inference_mode(self, mode)

    # ------------------------------------------------------------------------------ calling
    def call(self, inputs, training=None, mask=None):
        if len(self.inputs) == 1:
            inputs = image_of(inputs)
            self.check_image(inputs)
        else:
            if not isinstance(inputs, dict):
                raise ValueError(f"{self.name} takes a dict of inputs {self.input_names}; got "
                                 "a bare tensor.")
            missing = set(self.input_names) - set(inputs)
            if missing:
                raise ValueError(f"{self.name} needs inputs {self.input_names}; missing "
                                 f"{sorted(missing)}.")
            inputs = dict(inputs)
            inputs[IMAGE] = self.check_image(inputs[IMAGE])
            inputs = {name: inputs[name] for name in self.input_names}
        return super().call(inputs, training=training, mask=mask)

    def check_image(self, image):
        """Rejects images of the wrong channel count or size, with a message for people.

        Checked in Python whenever the shape is known (eager calls, graphs traced from datasets
        with static shapes); for dynamic shapes a graph assertion carries the same message.
        """
        shape = image.shape
        if len(shape) != 4:
            raise ValueError(f"{self.name} takes (batch, height, width, channels) images; got "
                             f"shape {tuple(shape)}.")
        if shape[-1] is not None and shape[-1] != self.input_channels:
            raise ValueError(channels_message(self.name, self.input_channels, shape[-1], shape))
        m = self.size_multiple
        if m <= 1:
            return image
        height, width = shape[1], shape[2]
        if height is not None and width is not None:
            if height % m or width % m:
                raise ValueError(size_message(self.name, m, height, width))
            return image
        import tensorflow as tf

        dynamic = tf.shape(image)
        ok = tf.logical_and(tf.equal(dynamic[1] % m, 0), tf.equal(dynamic[2] % m, 0))
        check = tf.debugging.Assert(ok, [f"The {self.name} needs height and width divisible by "
                                         f"{m}; got height, width =", dynamic[1], dynamic[2],
                                         "Fix: crop or pad the image."])
        with tf.control_dependencies([check]):
            return tf.identity(image)

    # ------------------------------------------------------------------------ serialisation
    def get_config(self):
        return {**super().get_config(), "size_multiple": self.size_multiple}

    @classmethod
    def from_config(cls, config, custom_objects=None):
        # Keras rebuilds functional subclasses from (inputs, outputs, name); the contract's
        # extra field is restored afterwards.
        config = dict(config)
        size_multiple = config.pop("size_multiple", 1)
        model = super().from_config(config, custom_objects=custom_objects)
        model.size_multiple = int(size_multiple)
        return model


def clone_generator(generator, clone_function=None):
    """``keras.models.clone_model`` for a :class:`Generator`, keeping its contract and weights."""
    copy = keras.models.clone_model(generator, clone_function=clone_function)
    copy.size_multiple = generator.size_multiple
    copy.set_weights(generator.get_weights())
    return copy


def as_generator(model):
    """The :class:`Generator` inside a trained model (anything with a ``generator``, such as
    :class:`pix2pix_tf.Pix2Pix`: its ``inference_generator``, the weight average where it
    keeps one), or ``model`` itself if it is one; else a clear error."""
    generator = model if isinstance(model, Generator) else getattr(
        model, "inference_generator", getattr(model, "generator", None))
    if not isinstance(generator, Generator):
        raise TypeError(f"{getattr(model, 'name', model)!r} is not a pix2pix_tf model or "
                        "generator (a Generator, or a model with a .generator that is one).")
    return generator
