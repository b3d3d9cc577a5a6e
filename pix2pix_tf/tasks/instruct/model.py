"""``InstructPix2Pix``: instruction-conditioned image editing as a conditional GAN.

An image and a text instruction go in ("make it sepia"), the edited image comes out, in one
forward pass. It is pix2pix with the instruction as a second condition (see
shared/docs/INSTRUCT.md for the precedents):

- the generator is the U-Net with FiLM conditioning from the instruction's embedding at every
  encoder and decoder block (:func:`pix2pix_tf.networks.unet_generator` with the
  text hook, :class:`pix2pix_tf.tasks.instruct.text.TextConditioning`), zero-initialised, so it starts as plain pix2pix;
- the discriminator is matching-aware (Reed et al., 2016): it sees input, output and instruction,
  and a *real* target paired with a *wrong* instruction is labelled fake, so it judges both
  realism and whether the image does what was asked. Its loss, per example, is
  ``(real + (fake + wrong) / 2) / 2`` (ManiGAN's averaging of the two fake terms);
- training is the pix2pix objective otherwise: L1 to the target (lambda 100) plus the GAN term.

Wrong instructions come from the next example of the batch (a roll), but only where that
example asks for a different edit: if the data gives each example's edit (``"edit"``, an int,
as the bundled edits do) different edits are required, else different token ids. Instruction
dropout replaces a few percent of instructions with the empty one in training (and word dropout
a tenth of the words with the unknown word), so an empty
instruction means "no edit guidance" (``edit(..., allow_empty=True)`` shows what the model does
then); ``instruction_dropout=1`` trains the no-text baseline, which never sees an instruction.

Batches are ``({"image": (b, H, W, C) in [-1, 1], "instruction": (b,) strings}, target)``; the
vocabulary (:class:`~pix2pix_tf.tasks.instruct.vocabulary.WordVocabulary`, or a pretrained
encoder's :class:`~pix2pix_tf.tasks.instruct.pretrained_text.WordPieceVocabulary` with
``text_encoder``) turns strings into
the networks' ``"tokens"`` input and travels inside the saved ``.keras``, which loads with
``safe_mode=True``.
"""

import keras
import numpy as np
from keras import ops

from pix2pix_tf.core import losses
from pix2pix_tf.model import Pix2Pix
from pix2pix_tf.networks import IMAGE, build_discriminator, build_generator
from pix2pix_tf.networks.tiled import translate
from pix2pix_tf.tasks.instruct.text import SubwordEmbedding, build_text
from pix2pix_tf.tasks.instruct.vocabulary import INSTRUCTION, PAD, TOKENS

#: The optional data field naming each example's edit (an int), for choosing wrong instructions.
EDIT = "edit"


def wrong_instructions(tokens, edits=None):
    """Wrong instructions for a batch: each example gets the next one's token ids (a roll).
    Returns ``(wrong_tokens, valid)``; ``valid`` is False where the two ask for the same thing
    (same token ids, or the same ``edits`` index when given) or either is empty (dropped
    out), since a real image with such an instruction is not a mismatch."""
    wrong = ops.roll(tokens, 1, axis=0)
    differs = ops.any(ops.not_equal(wrong, tokens), axis=1)
    if edits is not None:
        edits = ops.cast(ops.reshape(edits, (-1,)), "int32")
        differs = ops.logical_and(differs, ops.not_equal(ops.roll(edits, 1, axis=0), edits))
    said = lambda t: ops.any(ops.greater(t, PAD), axis=1)  # noqa: E731
    return wrong, ops.logical_and(differs, ops.logical_and(said(tokens), said(wrong)))


@keras.saving.register_keras_serializable(package="pix2pix_tf")
class InstructPix2Pix(Pix2Pix):
    """Image + instruction -> edited image, trained with ``model.fit``.

    Args:
        vocabulary: the instruction words the model knows (a list, most frequent first; see
            :func:`pix2pix_tf.tasks.instruct.vocabulary.build_vocabulary`). Other words map to
            one "unknown" token.
            Not needed with ``text_encoder``.
        sequence_length: the most words an instruction may have (longer ones are refused;
            with ``text_encoder``, word pieces plus the start and end tokens).
        text_encoder: ``None`` (default): the built-in encoder, learning words from scratch.
            Or a keras-hub preset (a name, a Kaggle/``hf://`` handle or a folder) whose
            pretrained encoder reads instructions for the generator, frozen (see
            :mod:`pix2pix_tf.tasks.instruct.pretrained_text`): a deviation that exists because
            a from-scratch encoder cannot know words its training instructions never used. The
            preset is read only when the networks are built here; a saved model carries it.
        text_encoder_trainable: fine-tune the pretrained encoder too (default frozen).
        generator, discriminator: networks taking ``"tokens"`` beside the images; default the
            paper's unet_256 with FiLM and the matching-aware 70x70 PatchGAN (projection).
        text_dim: width of the default networks' instruction embeddings.
        instruction_dropout: fraction of training instructions replaced by the empty one
            (default 0.05, as InstructPix2Pix drops its text condition), so that an empty
            instruction has a meaning; 1.0 trains the no-text baseline.
        word_dropout: fraction of the words of training instructions replaced by the unknown
            word (default 0.1): a deviation with no counterpart in pix2pix that exists because
            the text encoder learns words from scratch; it teaches the model to act on the
            words it knows when a request also has words it does not (measured in
            benchmarks/NOTES.md).
        subword_buckets: the built-in encoder reads each word's spelling: its whole-word and
            character n-gram vectors, hashed into this many buckets (fastText), so that a word
            no training instruction used but the vocabulary holds (see
            :func:`pix2pix_tf.tasks.instruct.vocabulary.english_words`) still means something
            (default 16384; measured in benchmarks/NOTES.md). 0: a vector per vocabulary word,
            knowing only trained words. Used to build the default networks; given networks carry
            their own (and ``model.subword_buckets`` says what they read).
        lambda_mismatch: weight of the real-image-with-wrong-instruction term among the
            discriminator's fake terms (1: as much as generated images; 0: a plain cGAN that
            also reads the text).
        Other arguments as :class:`pix2pix_tf.Pix2Pix`. ``g_sees_updated_d=False`` is not
        offered: the single-pass step has no matching-aware term.
    """

    task_name = "instruct"

    def __init__(self, generator=None, discriminator=None, *, vocabulary=None,
                 sequence_length=24, text_encoder=None, text_encoder_trainable=False,
                 text_dim=64, instruction_dropout=0.05, word_dropout=0.1, subword_buckets=16384,
                 lambda_mismatch=1.0,
                 input_channels=3,
                 output_channels=3, lambda_gan=1.0, inference_mode="paper", seed=None,
                 **kwargs):
        if not 0.0 <= instruction_dropout <= 1.0:
            raise ValueError(f"instruction_dropout must be in [0, 1], got {instruction_dropout}.")
        if not 0.0 <= word_dropout < 1.0:
            raise ValueError(f"word_dropout must be in [0, 1), got {word_dropout}.")
        if lambda_mismatch < 0:
            raise ValueError("lambda_mismatch must be >= 0.")
        if not kwargs.pop("g_sees_updated_d", True):
            raise ValueError("InstructPix2Pix trains with the reference step order "
                             "(g_sees_updated_d=True): the single-pass step has no "
                             "matching-aware discriminator term.")
        if vocabulary is None and text_encoder is not None and generator is not None:
            raise ValueError("give a generator with its vocabulary: text_encoder alone "
                             "builds the default networks.")
        if vocabulary is None and text_encoder is None:
            raise ValueError("InstructPix2Pix needs a vocabulary (the built-in encoder's "
                             "words) or a pretrained text_encoder preset.")
        text = build_text(sequence_length=sequence_length, vocabulary=vocabulary,
                          text_encoder=text_encoder, subword_buckets=subword_buckets,
                          text_dim=text_dim, text_encoder_trainable=text_encoder_trainable)
        self.vocabulary = text.vocabulary
        if generator is None:
            generator = build_generator("unet_256", input_channels, output_channels,
                                        inference_mode=inference_mode, seed=seed,
                                        conditioning=text.generator_conditioning())
        if discriminator is None and lambda_gan > 0:
            discriminator = build_discriminator(
                "patchgan", generator.input_channels, generator.output_channels,
                conditional=True, seed=None if seed is None else seed + 1,
                conditioning=text.discriminator_conditioning())
        if TOKENS not in generator.condition_inputs:
            raise ValueError(f"InstructPix2Pix needs a generator with a {TOKENS!r} input (e.g. "
                             "the task's text hook); got inputs "
                             f"{generator.input_names}.")
        length = generator.condition_inputs[TOKENS].shape[-1]
        if length != sequence_length:
            raise ValueError(f"the generator reads {length} tokens, but sequence_length is "
                             f"{sequence_length}.")
        super().__init__(generator, discriminator, lambda_gan=lambda_gan,
                         inference_mode=inference_mode, seed=seed, **kwargs)
        self.text_dim = int(text_dim)
        self.text_encoder, self.text_encoder_trainable = text_encoder, bool(text_encoder_trainable)
        self.instruction_dropout = float(instruction_dropout)
        self.word_dropout = float(word_dropout)
        spelling = [layer for layer in generator.layers if isinstance(layer, SubwordEmbedding)]
        self.subword_buckets = spelling[0].buckets if spelling else 0  # what the networks read
        self.lambda_mismatch = float(lambda_mismatch)
        self.instruction_seed = keras.random.SeedGenerator(
            None if seed is None else seed + 2, name="instruction_dropout_seed")
        self.d_mismatch_tracker = keras.metrics.Mean(name="d_mismatch")

    @property
    def sequence_length(self):
        return self.vocabulary.sequence_length

    @property
    def uses_text(self):
        """False for the no-text baseline (``instruction_dropout=1``)."""
        return self.instruction_dropout < 1.0

    @property
    def conditional(self):
        return self.discriminator is not None and len(self.discriminator.inputs) == 3

    @property
    def train_metrics(self):
        extra = [self.d_mismatch_tracker] if self.trains_discriminator else []
        return super().train_metrics + extra

    # ------------------------------------------------------------------ instructions -> tokens
    def network_inputs(self, inputs, training=False):
        """``{"image", "tokens"}`` for the networks from model inputs with ``"instruction"``
        strings (or ready ``"tokens"``); in training, instruction dropout is applied."""
        if not isinstance(inputs, dict) or IMAGE not in inputs:
            raise ValueError("InstructPix2Pix takes a dict {'image': images, 'instruction': "
                             "strings}; got " + (f"keys {sorted(inputs)}" if isinstance(
                                 inputs, dict) else f"a {type(inputs).__name__}") + ".")
        if TOKENS in inputs:
            tokens = ops.cast(inputs[TOKENS], "int32")
        elif INSTRUCTION in inputs:
            tokens = self.vocabulary.ids_of(inputs[INSTRUCTION])
        else:
            raise ValueError(f"InstructPix2Pix needs an {INSTRUCTION!r} (or {TOKENS!r}) input "
                             f"beside the image; got keys {sorted(inputs)}.")
        if not self.uses_text:
            tokens = ops.zeros_like(tokens)
        elif training:
            if self.word_dropout > 0:
                drop = keras.random.uniform(ops.shape(tokens), seed=self.instruction_seed)
                word = ops.greater(tokens, PAD)
                for special in self.vocabulary.special_ids:  # start / end tokens stay
                    word = ops.logical_and(word, ops.not_equal(tokens, special))
                unknown = ops.logical_and(drop < self.word_dropout, word)
                tokens = ops.where(unknown, ops.full_like(tokens, self.vocabulary.unknown),
                                   tokens)
            if self.instruction_dropout > 0:
                drop = keras.random.uniform((ops.shape(tokens)[0], 1),
                                            seed=self.instruction_seed)
                tokens = ops.where(drop < self.instruction_dropout, ops.zeros_like(tokens),
                                   tokens)
        return {IMAGE: inputs[IMAGE], TOKENS: tokens}

    def call(self, inputs, training=False):
        generator = self.generator if training else self.inference_generator
        return generator(self.network_inputs(inputs, training), training=training)

    def discriminator_inputs(self, inputs, images):
        return [inputs[IMAGE], images, inputs[TOKENS]]

    # ---------------------------------------------------------------------------- the steps
    def train_step(self, data):
        x, y = self._unpack(data)
        inputs = self.network_inputs(x, training=True)
        wrong, valid = wrong_instructions(inputs[TOKENS], x.get(EDIT))
        inputs["wrong_tokens"], inputs["wrong_valid"] = wrong, ops.cast(valid, "float32")
        return super().train_step((inputs, y))

    def _discriminator_loss(self, x, y, fake):
        real_logits = self.discriminate(x, y, training=True)[0]
        fake_logits = self.discriminate(x, fake, training=True)[0]
        wrong_logits = self.discriminate({**x, TOKENS: x["wrong_tokens"]}, y, training=True)[0]
        weight = self.lambda_mismatch * x["wrong_valid"]
        per_example = losses.matching_discriminator_loss(
            real_logits, fake_logits, wrong_logits, weight, self.gan_mode)
        mismatch = losses.gan_loss(wrong_logits, False, self.gan_mode)
        # How sure D is that real images with wrong instructions are fake (valid ones only).
        count = ops.maximum(ops.sum(x["wrong_valid"]), 1.0)
        self.d_mismatch_tracker.update_state(ops.sum(mismatch * x["wrong_valid"]) / count)
        return per_example, real_logits, fake_logits

    # ------------------------------------------------------------------------------ editing
    def edit(self, images, instructions, strength=1.0, *, allow_empty=False, tile=1024):
        """Edits images as instructed: one instruction for all, or one per image.

        Args:
            images: one image ``(H, W, C)`` or a batch / list of them, any size: ``uint8``
                (0-255; the result is ``uint8`` too) or float in [-1, 1] (the model's range).
            instructions: a string, or one string per image.
            strength: 1 is the model's edit; 0 the input unchanged; values between blend the
                two, values above 1 exaggerate the change (clipped to the valid range).
            allow_empty: accept empty instructions (the model's output without guidance).
            tile: largest side translated at once (see :func:`pix2pix_tf.inference.translate`).

        Raises ``TypeError`` / ``ValueError`` with the fix for non-string, empty (unless
        ``allow_empty``) or too-long instructions and for images of the wrong channel count.
        """
        single = not isinstance(images, (list, tuple)) and np.ndim(images) == 3
        batch = [images] if single else list(images)
        if isinstance(instructions, (str, bytes)):
            instructions = [instructions] * len(batch)
        instructions = list(instructions)
        if len(instructions) != len(batch):
            raise ValueError(f"got {len(batch)} image(s) but {len(instructions)} "
                             "instructions: give one instruction, or one per image.")
        tokens = self.vocabulary.encode(instructions, allow_empty=allow_empty)
        if not self.uses_text:
            tokens = np.zeros_like(tokens)  # the no-text baseline never reads them
        outputs = []
        for image, ids in zip(batch, tokens):
            image = np.asarray(image)
            as_uint8 = image.dtype == np.uint8
            x = image.astype(np.float32) / 127.5 - 1.0 if as_uint8 else image.astype(np.float32)
            if x.ndim != 3 or x.shape[-1] != self.input_channels:
                raise ValueError(f"images must be (height, width, {self.input_channels}); got "
                                 f"shape {image.shape}.")
            out = translate(self.inference_generator, x, tile=tile, conditions={TOKENS: ids})
            out = np.clip(x + strength * (out - x), -1.0, 1.0)
            outputs.append(np.round((out + 1.0) * 127.5).astype(np.uint8) if as_uint8 else out)
        return outputs[0] if single else outputs

    # ------------------------------------------------------------------------ serialisation
    def get_config(self):
        config = super().get_config()
        config.pop("g_sees_updated_d", None)
        config.update(vocabulary=self.vocabulary.spec,
                      sequence_length=self.sequence_length, text_encoder=self.text_encoder,
                      text_encoder_trainable=self.text_encoder_trainable, text_dim=self.text_dim,
                      instruction_dropout=self.instruction_dropout,
                      word_dropout=self.word_dropout,
                      subword_buckets=self.subword_buckets,
                      lambda_mismatch=self.lambda_mismatch)
        return config

