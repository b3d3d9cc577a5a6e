"""The editor's text side: instructions -> an embedding, and the hooks through which the image
networks listen to it. The one place where text encoders are built (:func:`build_text`).

Inside a network, :func:`text_encoder` embeds the token ids (:mod:`.vocabulary`) and pools them
into one vector per instruction: a layer-normalised masked mean of word embeddings (or a weighted
mean with weights learned per word, ``pooling="attention"``), optionally after ``text_blocks``
small self-attention blocks (no recurrent layers: TFLite's builtin ops reject GRU/LSTM
TensorLists). An instruction of padding only (an empty instruction, as instruction dropout makes
in training) pools to the zero vector: "no edit guidance".

Spelling (fastText's subword vectors, Bojanowski et al., 2017): a from-scratch encoder cannot know
a word its training instructions never used, but it can know how the word is spelt. With a
:func:`subword_table`, every vocabulary word is embedded as the mean of a vector for the whole word
and vectors for its character n-grams ("<di", "dim", "<dim", ...), so "dim" borrows what "dimmer"
learned and "hues" what "hue" learned. The vocabulary may then hold words no training instruction
used (:func:`~.vocabulary.english_words`, bundled): their n-grams speak for them. Vectors live in
hash buckets, not in a row per word, so 30,000 known words cost no more than the buckets; the
table maps token ids to buckets inside the network, so the token-ids contract of exports does not
change.

A pretrained encoder (keras-hub, optional; :mod:`.pretrained_text`) can replace the word
embeddings learned here for the generator.

:class:`TextConditioning` is the :class:`pix2pix_tf.core.conditioning.Conditioning` hook of both
networks: FiLM after every U-Net block (and cross-attention at the innermost levels) for the
generator; a projection term (or text channels at every pixel) for the matching-aware
discriminator. Every layer here is registered and serialisable, so editors save to ``.keras``
and load with ``safe_mode=True``.
"""

import zlib

import keras
import numpy as np
from keras import ops

from pix2pix_tf.core.conditioning import Conditioning, CrossAttention, FiLM, Projection, TileLike
from pix2pix_tf.core.layers import SeedSequence
from pix2pix_tf.tasks.instruct.pretrained_text import (
    PretrainedTextEncoder,
    WordPieceVocabulary,
    load_text_encoder,
)
from pix2pix_tf.tasks.instruct.vocabulary import (  # noqa: F401  (the text side's names)
    INSTRUCTION,
    PAD,
    TOKENS,
    WordVocabulary,
    build_vocabulary,
    english_words,
    parse_vocabulary_file,
    word_list,
)

#: Character n-gram lengths of :func:`subword_table`, counting the "<" and ">" word boundaries.
NGRAM_LENGTHS = (3, 5)
#: Most n-grams kept per word, the whole word included (a 14-letter word has 46; the longest
#: words lose some 5-grams).
MAX_NGRAMS = 32


def char_ngrams(word, lengths=NGRAM_LENGTHS):
    """The whole word ``<word>`` (its own vector, as in fastText), then the distinct character
    n-grams of ``<word>``, shortest first: "dim" -> "<dim>", "<di", "dim", "im>", "<dim",
    "dim>"."""
    marked = f"<{word}>"
    grams = (marked[i:i + n] for n in range(lengths[0], lengths[1] + 1)
             for i in range(len(marked) - n + 1))
    return list(dict.fromkeys([marked, *grams]))


def spelling_options(vocabulary_words, buckets):
    """The ``subwords`` and ``subword_buckets`` options of conditioned networks (see
    :func:`text_encoder`) that make their text encoder read spelling in ``buckets`` buckets;
    none for ``buckets=0`` (a vector per vocabulary word)."""
    if not buckets:
        return {}
    return dict(subwords=subword_table(vocabulary_words, buckets), subword_buckets=buckets)


def subword_table(vocabulary_words, buckets, max_ngrams=MAX_NGRAMS):
    """``(2 + len(vocabulary_words), K)`` int32: row ``i`` holds the n-gram buckets (1 to
    ``buckets``; 0 = none) of token id ``i``'s word, for :class:`SubwordEmbedding`. Padding and
    the unknown word (ids 0 and 1) have none. Buckets are CRC-32 hashes, the same in every
    process."""
    if buckets < 1:
        raise ValueError(f"buckets must be >= 1, got {buckets}.")
    rows = [[], []] + [[zlib.crc32(g.encode("utf-8")) % buckets + 1 for g in char_ngrams(w)]
                       [:max_ngrams] for w in vocabulary_words]
    width = max(1, max(len(r) for r in rows))
    table = np.zeros((len(rows), width), np.int32)
    for i, row in enumerate(rows):
        table[i, :len(row)] = row
    return table


# --------------------------------------------------------------------------------- layers
@keras.saving.register_keras_serializable(package="pix2pix_tf")
class MaskedMean(keras.layers.Layer):
    """``[embeddings (b, L, d), tokens (b, L)] -> (b, d)``: the mean over non-padding tokens;
    the zero vector for an instruction of padding only."""

    def call(self, inputs):
        embeddings, tokens = inputs
        mask = ops.cast(ops.greater(tokens, PAD), embeddings.dtype)[..., None]
        total = ops.sum(embeddings * mask, axis=1)
        count = ops.maximum(ops.sum(mask, axis=1), 1.0)
        return total / count

    def compute_output_shape(self, input_shapes):
        return (input_shapes[0][0], input_shapes[0][2])


@keras.saving.register_keras_serializable(package="pix2pix_tf")
class AttentionPool(keras.layers.Layer):
    """``[embeddings (b, L, d), tokens (b, L)] -> (b, d)``: a weighted mean over non-padding
    tokens, with weights softmax(w . embedding) learned per word, so that words that decide
    the edit ("sepia", "blur") can outweigh those that do not ("make", "it", "the"). ``w``
    starts at zero: the layer starts as :class:`MaskedMean`. Padding only pools to zero."""

    def build(self, input_shapes):
        self.score = keras.layers.Dense(1, kernel_initializer="zeros", name="score")
        self.score.build((None, None, input_shapes[0][-1]))

    def call(self, inputs):
        embeddings, tokens = inputs
        valid = ops.greater(tokens, PAD)
        scores = ops.cast(self.score(embeddings)[..., 0], "float32")
        scores = ops.where(valid, scores, ops.full_like(scores, -1e9))
        weights = ops.softmax(scores, axis=1) * ops.cast(valid, "float32")
        return ops.sum(ops.cast(weights, embeddings.dtype)[..., None] * embeddings, axis=1)

    def compute_output_shape(self, input_shapes):
        return (input_shapes[0][0], input_shapes[0][2])


@keras.saving.register_keras_serializable(package="pix2pix_tf")
class SubwordEmbedding(keras.layers.Layer):
    """Token ids ``(b, L)`` -> ``(b, L, dim)``: the mean of each word's whole-word and character
    n-gram vectors (fastText). ``table`` (:func:`subword_table`) maps token ids to n-gram
    buckets; it is a non-trainable weight, so saved models carry it and their configs stay
    small. A word with no n-grams (padding, the unknown word) gets the zero vector."""

    def __init__(self, vocabulary_size, ngrams, buckets, dim, table=None, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.vocabulary_size, self.ngrams = int(vocabulary_size), int(ngrams)
        self.buckets, self.dim, self.seed = int(buckets), int(dim), seed
        self._initial_table = table
        if table is not None and tuple(table.shape) != (self.vocabulary_size, self.ngrams):
            raise ValueError(f"the subword table is {tuple(table.shape)}, expected "
                             f"{(self.vocabulary_size, self.ngrams)}.")

    def build(self, input_shape):
        self.table = self.add_weight(shape=(self.vocabulary_size, self.ngrams), dtype="int32",
                                     initializer="zeros", trainable=False, name="ngram_buckets")
        if self._initial_table is not None:
            self.table.assign(self._initial_table)
        self.embeddings = self.add_weight(
            shape=(self.buckets + 1, self.dim), name="ngram_embeddings",
            initializer=keras.initializers.RandomNormal(0.0, 0.02, seed=self.seed))

    def call(self, tokens):
        ids = ops.take(self.table, ops.cast(tokens, "int32"), axis=0)  # (b, L, K)
        vectors = ops.take(self.embeddings, ids, axis=0)  # (b, L, K, dim)
        mask = ops.cast(ops.greater(ids, 0), vectors.dtype)[..., None]
        return ops.sum(vectors * mask, axis=2) / ops.maximum(ops.sum(mask, axis=2), 1.0)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape) + (self.dim,)

    def get_config(self):
        return {**super().get_config(), "vocabulary_size": self.vocabulary_size,
                "ngrams": self.ngrams, "buckets": self.buckets, "dim": self.dim,
                "seed": self.seed}


#: How the text encoder pools word embeddings into one vector.
POOLING = {"mean": MaskedMean, "attention": AttentionPool}


@keras.saving.register_keras_serializable(package="pix2pix_tf")
class PositionEmbedding(keras.layers.Layer):
    """Adds a learned embedding of each token's position to ``(b, L, d)`` embeddings."""

    def build(self, input_shape):
        self.positions = self.add_weight(shape=tuple(input_shape[1:]), name="positions",
                                         initializer=keras.initializers.RandomNormal(0, 0.02))

    def call(self, inputs):
        return inputs + ops.cast(self.positions, inputs.dtype)[None]


@keras.saving.register_keras_serializable(package="pix2pix_tf")
class TextBlock(keras.layers.Layer):
    """A small pre-norm transformer block over token embeddings; padding is not attended to."""

    def __init__(self, heads=2, **kwargs):
        super().__init__(**kwargs)
        self.heads = int(heads)

    def build(self, input_shapes):
        dim = input_shapes[0][-1]
        self.norm1 = keras.layers.LayerNormalization(epsilon=1e-5, name="norm1")
        self.attention = keras.layers.MultiHeadAttention(self.heads, dim // self.heads,
                                                         name="attention")
        self.norm2 = keras.layers.LayerNormalization(epsilon=1e-5, name="norm2")
        self.hidden = keras.layers.Dense(2 * dim, activation="relu", name="hidden")
        self.out = keras.layers.Dense(dim, name="out")
        shape = input_shapes[0]
        self.norm1.build(shape)
        self.attention.build(shape, shape)
        self.norm2.build(shape)
        self.hidden.build(shape)
        self.out.build(tuple(shape[:-1]) + (2 * dim,))

    def call(self, inputs):
        x, tokens = inputs
        valid = ops.greater(tokens, PAD)
        mask = ops.logical_and(valid[:, :, None], valid[:, None, :])
        h = self.norm1(x)
        x = x + self.attention(h, h, attention_mask=mask)
        return x + self.out(self.hidden(self.norm2(x)))

    def compute_output_shape(self, input_shapes):
        return input_shapes[0]

    def get_config(self):
        return {**super().get_config(), "heads": self.heads}


def text_encoder(tokens, vocabulary_size, dim, *, blocks=0, pooling="mean", seeds=None,
                 prefix="text", backbone=None, backbone_trainable=False, subwords=None,
                 subword_buckets=None):
    """Functional layers embedding ``tokens`` (a ``(b, L)`` int Keras tensor) and pooling them
    ('attention' or 'mean', see :data:`POOLING`). Returns ``(pooled (b, dim), per_token
    (b, L, d))``.

    ``subwords``: a :func:`subword_table` for the vocabulary (``subword_buckets`` buckets): each
    word is embedded as the mean of its whole-word and character n-gram vectors
    (:class:`SubwordEmbedding`) instead of by a vector per vocabulary word.

    ``backbone``: a pretrained keras-hub text backbone (see :mod:`.pretrained_text`)
    whose per-token features replace the word embeddings learned from scratch; frozen unless
    ``backbone_trainable``.
    """
    if pooling not in POOLING:
        raise ValueError(f"Unknown text pooling {pooling!r}; choose one of "
                         f"{', '.join(POOLING)}.")
    if backbone is not None:
        x = PretrainedTextEncoder(backbone, trainable=backbone_trainable,
                                  name=f"{prefix}_pretrained")(tokens)
    else:
        seed = seeds.next() if seeds else None
        if subwords is not None:
            x = SubwordEmbedding(vocabulary_size, subwords.shape[1], subword_buckets, dim,
                                 table=subwords, seed=seed, name=f"{prefix}_subwords")(tokens)
        else:
            init = keras.initializers.RandomNormal(0.0, 0.02, seed=seed)
            x = keras.layers.Embedding(vocabulary_size, dim, embeddings_initializer=init,
                                       name=f"{prefix}_embedding")(tokens)
    if blocks:
        x = PositionEmbedding(name=f"{prefix}_positions")(x)
        for i in range(blocks):
            x = TextBlock(name=f"{prefix}_block{i + 1}")([x, tokens])
    pooled = POOLING[pooling](name=f"{prefix}_{pooling}")([x, tokens])
    # Normalised, so that a long instruction (whose mean has a smaller norm) speaks as loudly
    # as a short one.
    pooled = keras.layers.LayerNormalization(epsilon=1e-5, name=f"{prefix}_norm")(pooled)
    pooled = keras.layers.Dense(dim, activation="relu", name=f"{prefix}_dense")(pooled)
    return pooled, x


#: How the matching-aware discriminator reads the instruction: a projection term on every
#: patch's logit (Miyato & Koyama, 2018), or the text embedding appended to every input pixel.
TEXT_CONDITIONING = ("projection", "concat")


class TextConditioning(Conditioning):
    """The instruction as a :class:`pix2pix_tf.core.conditioning.Conditioning` hook.

    ``role="generator"``: a ``"tokens"`` input, the text encoder (its own seeds, so that the
    image layers get the same weights as the plain U-Net's), then FiLM after every block and
    cross-attention in the ``cross_attention`` innermost encoder levels. ``role="discriminator"``
    (matching-aware): a small encoder of its own over the same ids, read by ``text_conditioning``.
    """

    def __init__(self, role, *, vocabulary_size, sequence_length, text_dim, text_blocks=0,
                 text_pooling="mean", subwords=None, subword_buckets=None, backbone=None,
                 backbone_trainable=False, cross_attention=0, text_conditioning="projection"):
        if role not in ("generator", "discriminator"):
            raise ValueError(f"role must be 'generator' or 'discriminator', got {role!r}.")
        if text_conditioning not in TEXT_CONDITIONING:
            raise ValueError(f"Unknown text_conditioning {text_conditioning!r}; choose one of "
                             f"{', '.join(TEXT_CONDITIONING)}.")
        self.role = role
        self.name_prefix = "instruct_" if role == "generator" else "matching_"
        self.vocabulary_size, self.sequence_length = int(vocabulary_size), int(sequence_length)
        self.text_dim, self.text_blocks, self.text_pooling = int(text_dim), text_blocks, text_pooling
        self.subwords, self.subword_buckets = subwords, subword_buckets
        self.backbone, self.backbone_trainable = backbone, backbone_trainable
        self.cross_attention, self.text_conditioning = int(cross_attention), text_conditioning

    def inputs(self, seeds, levels=None):
        if levels is not None and self.cross_attention > levels:
            raise ValueError(f"cross_attention ({self.cross_attention}) cannot exceed num_downs "
                             f"({levels}).")
        self.tokens = keras.Input((self.sequence_length,), dtype="int32", name=TOKENS)  # (b, L)
        if self.role == "generator":
            text_seeds = SeedSequence(None if seeds.seed is None else seeds.seed + 7919)
            self.text, self.words = text_encoder(
                self.tokens, self.vocabulary_size, self.text_dim, blocks=self.text_blocks,
                pooling=self.text_pooling, seeds=text_seeds, backbone=self.backbone,
                backbone_trainable=self.backbone_trainable, subwords=self.subwords,
                subword_buckets=self.subword_buckets)  # (b, d), (b, L, d)
        else:
            self.text = text_encoder(self.tokens, self.vocabulary_size, self.text_dim,
                                     pooling=self.text_pooling, seeds=seeds, prefix="d_text",
                                     subwords=self.subwords,
                                     subword_buckets=self.subword_buckets)[0]
        return {TOKENS: self.tokens}

    def block(self, x, name, depth=None):
        x = FiLM(name=f"{name}_film")([x, self.text])
        if depth is not None and depth < self.cross_attention:
            x = CrossAttention(name=f"{name}_attention")([x, self.words, self.tokens])
        return x

    def pixels(self, x):
        if self.text_conditioning != "concat":
            return x
        return keras.layers.Concatenate(name="pair_text")(
            [x, TileLike(name="text_tiled")([self.text, x])])

    def extra_logit_channels(self, ndf):
        return ndf if self.text_conditioning == "projection" else 0

    def logits(self, x):
        if self.text_conditioning != "projection":
            return x
        return Projection(name="projection")([x, self.text])  # logit + <phi, W text>


def make_vocabulary(spec, sequence_length):
    """The vocabulary a ``Vocabulary.spec`` describes: a list of words (the built-in
    :class:`~.vocabulary.WordVocabulary`) or a pretrained tokenizer's dict
    (:class:`~.pretrained_text.WordPieceVocabulary`). A vocabulary object is returned as it is."""
    if isinstance(spec, dict):
        return WordPieceVocabulary.from_spec(spec, sequence_length)
    if hasattr(spec, "ids_of"):
        if spec.sequence_length != sequence_length:
            raise ValueError(f"the vocabulary reads {spec.sequence_length} tokens, but "
                             f"sequence_length is {sequence_length}.")
        return spec
    return WordVocabulary(spec, sequence_length)


def read_vocabulary(path):
    """The vocabulary whose file ``Vocabulary.write`` wrote (either kind). The file is checked
    first (:func:`~pix2pix_tf.tasks.instruct.vocabulary.parse_vocabulary_file`): anything else
    is a ``DataError`` naming it."""
    kind, _, _, _ = parse_vocabulary_file(path)
    return (WordPieceVocabulary if kind == "wordpiece" else WordVocabulary).read(path)


class Text:
    """An editor's text side, built once: its vocabulary, the pretrained backbone (if any), the
    spelling table (made on first use, shared by both networks), and a
    :class:`TextConditioning` hook per network on demand."""

    def __init__(self, vocabulary, backbone=None, *, text_dim=64, text_blocks=0,
                 text_pooling="mean", subword_buckets=16384, cross_attention=0,
                 text_conditioning="projection", text_encoder_trainable=False):
        self.vocabulary, self.backbone = vocabulary, backbone
        self.subword_buckets = 0 if backbone is not None else subword_buckets
        self.shared = dict(vocabulary_size=vocabulary.size,
                           sequence_length=vocabulary.sequence_length, text_dim=text_dim,
                           text_pooling=text_pooling)
        self.generator_only = dict(text_blocks=text_blocks, cross_attention=cross_attention,
                                   backbone=backbone, backbone_trainable=text_encoder_trainable)
        self.text_conditioning = text_conditioning
        self._spelling = None

    @property
    def spelling(self):
        """The ``subwords`` / ``subword_buckets`` options (:func:`spelling_options`)."""
        if self._spelling is None:
            self._spelling = spelling_options(self.vocabulary.words, self.subword_buckets)
        return self._spelling

    def generator_conditioning(self):
        return TextConditioning("generator", **self.shared, **self.spelling,
                                **self.generator_only)

    def discriminator_conditioning(self):
        return TextConditioning("discriminator", **self.shared, **self.spelling,
                                text_conditioning=self.text_conditioning)


def build_text(*, sequence_length, vocabulary=None, instructions=None, text_encoder=None,
               extra_words="english", subword_buckets=16384, **options):
    """The :class:`Text` of an editor: the vocabulary from ``vocabulary`` (a spec or object),
    else the ``text_encoder`` preset's (pretrained, keras-hub), else built from training
    ``instructions`` (plus the ``extra_words`` list when the encoder reads spelling, since words
    no instruction trains mean something only through their spelling). ``options``: the rest of
    :class:`Text`'s."""
    backbone = None
    if text_encoder and vocabulary is None:
        vocabulary, backbone = load_text_encoder(text_encoder, sequence_length)
    elif vocabulary is None:
        if instructions is None:
            raise ValueError("an editor needs a vocabulary, training instructions to build one "
                             "from, or a pretrained text_encoder preset.")
        extra = word_list(extra_words) if subword_buckets else []
        vocabulary = build_vocabulary(instructions, extra=extra)
    vocabulary = make_vocabulary(vocabulary, sequence_length)
    return Text(vocabulary, backbone, subword_buckets=subword_buckets, **options)
