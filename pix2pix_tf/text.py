"""Instructions as network inputs: words -> token ids -> an embedding, and the layers that let an
image network listen to it (FiLM, cross-attention, the projection discriminator's inner product).

Strings never enter a network. :class:`Vocabulary` turns instructions into fixed-length int32
token ids (0 = padding, 1 = an unknown word) with ``keras.layers.TextVectorization``; networks
take the ids as an input named ``"tokens"``. That split is what export needs: a SavedModel can
take strings (the vocabulary runs inside it), while TFLite's builtin ops and ONNX cannot, so those
files take token ids and ship the vocabulary beside them.

Inside a network, :func:`text_encoder` embeds the ids and pools them into one vector per
instruction: a layer-normalised masked mean of word embeddings (or a weighted mean with
weights learned per word, ``pooling="attention"``), optionally after ``text_blocks`` small
self-attention blocks (no recurrent layers: TFLite's builtin ops reject GRU/LSTM TensorLists).

An instruction of padding only (an empty instruction, as instruction dropout makes in training)
pools to the zero vector: "no edit guidance".

Spelling (fastText's subword vectors, Bojanowski et al., 2017): a from-scratch encoder cannot know
a word its training instructions never used, but it can know how the word is spelt. With a
:func:`subword_table`, every vocabulary word is embedded as the mean of a vector for the whole word
and vectors for its character n-grams ("<di", "dim", "<dim", ...), so "dim" borrows what "dimmer"
learned and "hues" what "hue" learned. The vocabulary may then hold words no training instruction
used (:func:`english_words`, bundled, by ``build_vocabulary(..., extra=...)``): their n-grams
speak for them. Vectors live in hash buckets, not in a row per word, so 30,000 known words cost
no more than the buckets; the table maps token ids to buckets inside the network, so the
token-ids contract of exports does not change.

A pretrained encoder (keras-hub, optional) can replace the word embeddings learned here:
:mod:`pix2pix_tf.pretrained_text` gives its tokenizer the same contract as :class:`Vocabulary`
(:func:`make_vocabulary` rebuilds either from a saved config) and its backbone a layer.

Every layer here is registered and serialisable, so conditioned models save to ``.keras`` and load
with ``safe_mode=True``.
"""

import collections
import re
import zlib
from pathlib import Path

import keras
import numpy as np
from keras import ops

#: The name of the token-ids input of conditioned networks.
TOKENS = "tokens"
#: The name of the instruction-string field of data and models.
INSTRUCTION = "instruction"
#: Token ids reserved by TextVectorization: padding and out-of-vocabulary words.
PAD, UNKNOWN = 0, 1

_PUNCTUATION = re.compile(r"[!\"#$%&()*+,\-./:;<=>?@\[\\\]^_`{|}~']")


def words(instruction):
    """The words TextVectorization's 'lower_and_strip_punctuation' + whitespace split makes of
    an instruction, in Python (for vocabularies and for checks with messages)."""
    return _PUNCTUATION.sub("", instruction.lower()).split()


def build_vocabulary(instructions, max_words=None, extra=()):
    """The words of ``instructions``, most frequent first (ties alphabetical), at most
    ``max_words``, then the words of ``extra`` they lack (e.g. :func:`english_words`, for an
    encoder that reads spelling): a vocabulary for :class:`Vocabulary`."""
    counts = collections.Counter(w for text in instructions for w in words(text))
    ranked = sorted(counts, key=lambda w: (-counts[w], w))
    ranked = ranked[:max_words] if max_words else ranked
    known = set(ranked)
    return ranked + [w for w in dict.fromkeys(extra) if w not in known]


#: ``extra`` word lists of :func:`build_vocabulary` by name (``--extra-words``).
WORD_LISTS = ("english", "none")


def english_words():
    """The bundled list of the 30,000 most frequent lowercase English words (wordfreq; see
    ``pix2pix_tf/data/english_words.txt``), most frequent first."""
    path = Path(__file__).parent / "data" / "english_words.txt"
    return [line for line in path.read_text(encoding="utf-8").splitlines()
            if line and not line.startswith("#")]


def word_list(name):
    """The words a :data:`WORD_LISTS` name stands for."""
    if name not in WORD_LISTS:
        raise ValueError(f"Unknown word list {name!r}; choose one of {', '.join(WORD_LISTS)}.")
    return english_words() if name == "english" else []


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


def check_instructions(instructions, sequence_length, allow_empty=False, count=None,
                       unit="words"):
    """Validates a batch of instructions given by a person; returns them as a list of str.

    Raises ``TypeError`` for a non-string and ``ValueError`` for an empty instruction (unless
    ``allow_empty``) or one longer than ``sequence_length``, naming it and the fix. ``count``
    gives the positions an instruction takes (default: its :func:`words`; 0 means empty),
    ``unit`` what they are called in the message.
    """
    count = count or (lambda text: len(words(text)))
    if isinstance(instructions, (str, bytes)):
        instructions = [instructions]
    checked = []
    for i, text in enumerate(instructions):
        if isinstance(text, bytes):
            text = text.decode("utf-8")
        if not isinstance(text, str):
            raise TypeError(f"instruction {i} is a {type(text).__name__} ({text!r}); "
                            "instructions are text, e.g. \"make it sepia\".")
        n = count(text)
        if n == 0 and not allow_empty:
            raise ValueError(f"instruction {i} is empty ({text!r}): say what to do, e.g. "
                             "\"make it black and white\". (allow_empty=True gives the model's "
                             "output without edit guidance.)")
        if n > sequence_length:
            raise ValueError(f"instruction {i} has {n} {unit}, more than this model's "
                             f"sequence length of {sequence_length}: {text[:80]!r}. Shorten it, "
                             "or train a model with a longer --sequence-length.")
        checked.append(text)
    return checked


def padded_to_length(ids, sequence_length, unit):
    """``(batch, longest)`` token ids padded to ``(batch, sequence_length)``; in TensorFlow ops,
    an ``InvalidArgumentError`` (naming ``unit``, e.g. "words") where ``longest`` is longer."""
    import tensorflow as tf

    length = tf.shape(ids)[1]
    check = tf.debugging.assert_less_equal(
        length, sequence_length,
        message=f"an instruction has more {unit} than the model's sequence length of "
                f"{sequence_length}; shorten it")
    with tf.control_dependencies([check]):
        ids = tf.pad(ids, [[0, 0], [0, sequence_length - length]])
    return tf.ensure_shape(ids, [None, sequence_length])


class Vocabulary:
    """Instructions -> ``(batch, sequence_length)`` int32 token ids, in TensorFlow ops.

    ``vocabulary``: the known words (ids 2, 3, ... in that order). Longer instructions are an
    error, never silently cut: eagerly a ``ValueError`` naming the instruction, in a graph an
    ``InvalidArgumentError`` with the same advice.
    """

    def __init__(self, vocabulary, sequence_length):
        self.words = [str(w) for w in vocabulary]
        self.sequence_length = int(sequence_length)
        if not self.words:
            raise ValueError("a vocabulary needs at least one word.")
        if self.sequence_length < 1:
            raise ValueError(f"sequence_length must be >= 1, got {sequence_length}.")
        self.layer = keras.layers.TextVectorization(
            standardize="lower_and_strip_punctuation", split="whitespace",
            vocabulary=self.words, output_mode="int", output_sequence_length=None,
            name="instruction_vectorizer")

    #: Token id that word dropout substitutes; ids never dropped (none: no start/end tokens).
    unknown, special_ids = UNKNOWN, ()

    @property
    def size(self):
        """Number of token ids, padding and unknown included."""
        return len(self.words) + 2

    @property
    def spec(self):
        """What :func:`make_vocabulary` rebuilds this from (saved in model configs)."""
        return list(self.words)

    def check(self, instructions, allow_empty=False):
        """:func:`check_instructions` for this vocabulary's sequence length."""
        return check_instructions(instructions, self.sequence_length, allow_empty)

    def ids_of(self, instructions):
        """Token ids of a batch of instruction strings (a 1-D string tensor or list)."""
        import tensorflow as tf

        strings = tf.reshape(tf.convert_to_tensor(instructions, tf.string), [-1])
        ids = tf.cast(self.layer(strings), tf.int32)  # (batch, longest)
        return padded_to_length(ids, self.sequence_length, "words")

    def encode(self, instructions, allow_empty=False):
        """NumPy token ids of instructions checked with :func:`check_instructions`."""
        return self.ids_of(self.check(instructions, allow_empty)).numpy()

    def write(self, path):
        """Writes the vocabulary, one word per line in id order from id 2 (ids 0 and 1 are
        padding and unknown words), with the sequence length in a comment line first."""
        from pix2pix_tf.rundir import write_atomically

        text = (f"# pix2pix_tf vocabulary: ids 0 = padding, 1 = unknown word, then one word per "
                f"line from id 2; sequence_length {self.sequence_length}\n"
                + "".join(w + "\n" for w in self.words))
        write_atomically(path, lambda tmp: open(tmp, "w", encoding="utf-8").write(text))

    @classmethod
    def read(cls, path):
        """The vocabulary :meth:`write` (or a pretrained encoder's vocabulary's ``write``)
        wrote."""
        lines = open(path, encoding="utf-8").read().splitlines()
        if lines and lines[0].startswith("# pix2pix_tf wordpiece"):
            from pix2pix_tf.pretrained_text import WordPieceVocabulary

            return WordPieceVocabulary.read(path)
        length = int(lines[0].rsplit(" ", 1)[1])
        return cls(lines[1:], length)

    def ids_in_python(self, instruction):
        """Token ids of one instruction without TensorFlow (what a TFLite or ONNX client does
        with the written vocabulary)."""
        index = {w: i + 2 for i, w in enumerate(self.words)}
        ids = [index.get(w, UNKNOWN) for w in words(instruction)][: self.sequence_length]
        return np.array(ids + [PAD] * (self.sequence_length - len(ids)), np.int32)


def make_vocabulary(spec, sequence_length):
    """The vocabulary a :attr:`Vocabulary.spec` describes: a list of words (the built-in
    encoder's :class:`Vocabulary`) or a pretrained tokenizer's dict (see
    :mod:`pix2pix_tf.pretrained_text`). A vocabulary object is returned as it is."""
    if isinstance(spec, dict):
        from pix2pix_tf.pretrained_text import WordPieceVocabulary

        return WordPieceVocabulary.from_spec(spec, sequence_length)
    if hasattr(spec, "ids_of"):
        if spec.sequence_length != sequence_length:
            raise ValueError(f"the vocabulary reads {spec.sequence_length} tokens, but "
                             f"sequence_length is {sequence_length}.")
        return spec
    return Vocabulary(spec, sequence_length)


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

    ``backbone``: a pretrained keras-hub text backbone (see :mod:`pix2pix_tf.pretrained_text`)
    whose per-token features replace the word embeddings learned from scratch; frozen unless
    ``backbone_trainable``.
    """
    if pooling not in POOLING:
        raise ValueError(f"Unknown text pooling {pooling!r}; choose one of "
                         f"{', '.join(POOLING)}.")
    if backbone is not None:
        from pix2pix_tf.pretrained_text import PretrainedTextEncoder

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


@keras.saving.register_keras_serializable(package="pix2pix_tf")
class FiLM(keras.layers.Layer):
    """Feature-wise linear modulation (Perez et al., 2018): ``x * (1 + gamma) + beta`` per
    channel, ``[gamma, beta]`` projected from a condition vector.

    The projection starts at zero, so a FiLM layer starts as the identity and a conditioned
    network starts as the unconditioned one.
    """

    def build(self, input_shapes):
        channels, dim = input_shapes[0][-1], input_shapes[1][-1]
        self.projection = keras.layers.Dense(2 * channels, kernel_initializer="zeros",
                                             name="projection")
        self.projection.build((None, dim))

    def call(self, inputs):
        x, condition = inputs
        gamma, beta = ops.split(ops.cast(self.projection(condition), x.dtype), 2, axis=-1)
        return x * (1.0 + gamma[:, None, None, :]) + beta[:, None, None, :]

    def compute_output_shape(self, input_shapes):
        return input_shapes[0]


@keras.saving.register_keras_serializable(package="pix2pix_tf")
class CrossAttention(keras.layers.Layer):
    """Every pixel of ``x (b, h, w, c)`` attends to the instruction's token embeddings
    ``(b, L, d)`` (padding masked), added back residually; the output projection starts at zero,
    so the layer starts as the identity. Used at low resolutions, where it is cheap."""

    def __init__(self, heads=2, **kwargs):
        super().__init__(**kwargs)
        self.heads = int(heads)

    def build(self, input_shapes):
        channels = input_shapes[0][-1]
        self.attention = keras.layers.MultiHeadAttention(
            self.heads, max(channels // self.heads, 8), output_shape=channels,
            kernel_initializer="glorot_uniform", name="attention")
        self.attention.build((None, None, channels), (None, None, input_shapes[1][-1]))
        self.attention._output_dense.kernel.assign(
            ops.zeros_like(self.attention._output_dense.kernel))

    def call(self, inputs):
        x, text, tokens = inputs
        shape = ops.shape(x)
        flat = ops.reshape(x, (shape[0], shape[1] * shape[2], shape[3]))
        mask = ops.broadcast_to(ops.greater(tokens, PAD)[:, None, :],
                                (shape[0], shape[1] * shape[2], ops.shape(tokens)[1]))
        attended = self.attention(flat, ops.cast(text, x.dtype), attention_mask=mask)
        return x + ops.reshape(attended, shape)

    def compute_output_shape(self, input_shapes):
        return input_shapes[0]

    def get_config(self):
        return {**super().get_config(), "heads": self.heads}


@keras.saving.register_keras_serializable(package="pix2pix_tf")
class Projection(keras.layers.Layer):
    """The projection discriminator's text term (Miyato & Koyama, 2018): from the last block's
    ``[logit | phi] (b, h, w, 1 + k)`` and the text vector ``(b, d)``, the logits
    ``logit + <phi, W text>``, ``(b, h, w, 1)``."""

    def build(self, input_shapes):
        self.embed = keras.layers.Dense(input_shapes[0][-1] - 1, use_bias=False, name="embed")
        self.embed.build((None, input_shapes[1][-1]))

    def call(self, inputs):
        features, text = inputs
        logit, phi = features[..., :1], features[..., 1:]
        projected = ops.cast(self.embed(text), phi.dtype)[:, None, None, :]
        return logit + ops.sum(phi * projected, axis=-1, keepdims=True)

    def compute_output_shape(self, input_shapes):
        return tuple(input_shapes[0][:-1]) + (1,)


@keras.saving.register_keras_serializable(package="pix2pix_tf")
class TileLike(keras.layers.Layer):
    """``[vector (b, d), image (b, h, w, c)] -> (b, h, w, d)``: the vector at every pixel (the
    concat-conditioned discriminator's text channels)."""

    def call(self, inputs):
        vector, image = inputs
        shape = ops.shape(image)
        tiled = ops.broadcast_to(vector[:, None, None, :],
                                 (shape[0], shape[1], shape[2], ops.shape(vector)[-1]))
        return ops.cast(tiled, image.dtype)

    def compute_output_shape(self, input_shapes):
        return tuple(input_shapes[1][:-1]) + (input_shapes[0][-1],)
