"""Pretrained text encoders for the instruction editor, from keras-hub (an optional extra).

The built-in encoder (:func:`pix2pix_tf.tasks.instruct.text.text_encoder`) learns words only from the training
instructions, so a request made of words it never saw ("add brightness") is a guess. A pretrained
encoder brings what it learned from large corpora: its embedding of "add brightness" is already
near "brighten it". This module plugs one in, the rest of the editor unchanged:

- :func:`load_text_encoder` loads a keras-hub preset: a preset name
  (``"bert_tiny_en_uncased"``), a Kaggle or Hugging Face handle
  (``"hf://sentence-transformers/all-MiniLM-L6-v2"``), or a local folder in either format. Only
  building a *new* model reads the preset (and may download it); the weights then travel inside
  the saved ``.keras``, and the vocabulary inside its config.
- :class:`WordPieceVocabulary` is the pretrained tokenizer behind the same contract as
  :class:`pix2pix_tf.tasks.instruct.vocabulary.Vocabulary`: strings -> fixed-length int32 ids with 0 = padding, a
  checked length, an empty instruction as padding only ("no edit guidance"), ``write`` /
  ``read`` for the file beside a TFLite or ONNX export, and :meth:`~WordPieceVocabulary.ids_in_python`
  for clients without TensorFlow. WordPiece (the BERT family: BERT, MiniLM, DistilBERT,
  ELECTRA...) is what is supported; other tokenizers are refused with that message.
- :class:`PretrainedTextEncoder` is the layer that runs the backbone on token ids inside the
  generator. It is frozen by default (and then always runs in inference mode, without its
  dropout): a few hundred instructions are too few to fine-tune 20M+ weights, and freezing
  keeps the step cheap. Only the generator reads it; the matching-aware discriminator keeps a
  small encoder of its own over the same ids (it judges training instructions only).

Install with ``pip install "pix2pix_tf[hub]"``. keras-hub needs ``tensorflow-text``, whose wheel
depends on the full ``tensorflow`` package; next to ``tensorflow-cpu`` install it with
``pip install --no-deps tensorflow-text`` first (shared/docs/INSTRUCT.md). A SavedModel exported
from such an editor needs ``import tensorflow_text`` before loading (its tokenizer's ops).
"""

import re
import unicodedata

import keras
import numpy as np
from keras import ops

from pix2pix_tf.tasks.instruct.vocabulary import PAD, Vocabulary, padded_to_length

#: How to get the optional dependencies.
INSTALL = ('pip install "pix2pix_tf[hub]" (on tensorflow-cpu: pip install --no-deps '
           'tensorflow-text first, then the extra)')


def import_keras_hub():
    """keras_hub with tensorflow_text (whose ops its tokenizers need), or an ImportError
    saying how to install them."""
    try:
        import keras_hub
        import tensorflow_text  # noqa: F401  (registers the tokenizer ops)
    except ImportError as error:
        raise ImportError(f"pretrained text encoders need keras-hub and tensorflow-text "
                          f"({error}). Install them with: {INSTALL}.") from error
    return keras_hub


# ----------------------------------------------------------------------------- tokenizer
def _is_punctuation(char):
    """BERT's punctuation: all non-letter/number ASCII, and Unicode class P."""
    code = ord(char)
    if 33 <= code <= 47 or 58 <= code <= 64 or 91 <= code <= 96 or 123 <= code <= 126:
        return True
    return unicodedata.category(char).startswith("P")


class WordPieceVocabulary(Vocabulary):
    """Instructions -> ``(batch, sequence_length)`` int32 ids with a pretrained WordPiece
    vocabulary: ``[CLS] pieces [SEP]`` then padding (id 0).

    Args:
        pieces: the vocabulary in id order; ``pieces[0]`` must be the padding token.
        sequence_length: positions per instruction, start and end tokens included.
        lowercase, strip_accents: the tokenizer's normalisation (as the preset's).
        unknown_token, start_token, end_token: its special tokens.
    """

    unit = "word pieces (start and end included)"

    file_kind = "wordpiece"

    def __init__(self, pieces, sequence_length, *, lowercase=True, strip_accents=True,
                 unknown_token="[UNK]", start_token="[CLS]", end_token="[SEP]"):
        self.words = [str(p) for p in pieces]
        self.sequence_length = int(sequence_length)
        self.lowercase, self.strip_accents = bool(lowercase), bool(strip_accents)
        self.tokens = dict(unknown_token=unknown_token, start_token=start_token,
                           end_token=end_token)
        index = {p: i for i, p in enumerate(self.words)}
        missing = [t for t in self.tokens.values() if t not in index]
        if missing:
            raise ValueError(f"the vocabulary lacks the special token(s) {missing}.")
        if self.sequence_length < 3:
            raise ValueError(f"sequence_length must be >= 3 (start, a word, end), got "
                             f"{sequence_length}.")
        self._index = index
        self.unknown = index[unknown_token]
        self.start, self.end = index[start_token], index[end_token]
        #: Ids word dropout never replaces.
        self.special_ids = (self.start, self.end)
        self._layer = self._graph_ids = None
        try:
            self._make_layer()
        except ImportError:  # a client with the vocabulary file only: ids_in_python works
            pass

    @classmethod
    def from_tokenizer(cls, tokenizer, sequence_length):
        """The vocabulary of a keras-hub WordPiece tokenizer (a preset's)."""
        keras_hub = import_keras_hub()
        if not isinstance(tokenizer, keras_hub.tokenizers.WordPieceTokenizer):
            raise ValueError(f"this preset's tokenizer is a {type(tokenizer).__name__}; "
                             "pretrained text encoders with WordPiece tokenizers (the BERT "
                             "family: BERT, MiniLM, DistilBERT, ELECTRA, ...) are supported.")
        pieces = tokenizer.get_vocabulary()
        pad = getattr(tokenizer, "pad_token", "[PAD]")
        if pieces[0] != pad:
            raise ValueError(f"the tokenizer's padding token {pad!r} is not id 0.")
        return cls(pieces, sequence_length, lowercase=tokenizer.lowercase,
                   strip_accents=tokenizer.strip_accents, unknown_token=tokenizer.oov_token,
                   start_token=getattr(tokenizer, "cls_token", "[CLS]"),
                   end_token=getattr(tokenizer, "sep_token", "[SEP]"))

    # ------------------------------------------------------------------ the shared contract
    @property
    def size(self):
        """Number of token ids."""
        return len(self.words)

    @property
    def spec(self):
        """What :func:`pix2pix_tf.tasks.instruct.text.make_vocabulary` rebuilds this from."""
        return {"wordpiece": list(self.words), "lowercase": self.lowercase,
                "strip_accents": self.strip_accents, **self.tokens}

    @classmethod
    def from_spec(cls, spec, sequence_length):
        spec = dict(spec)
        return cls(spec.pop("wordpiece"), sequence_length, **spec)

    @property
    def layer(self):
        """The keras-hub tokenizer running this vocabulary in TensorFlow ops (only
        TensorFlow-side tokenizing needs keras-hub; :meth:`ids_in_python` does not)."""
        if self._layer is None:
            import_keras_hub()  # raises, saying how to install it
            self._make_layer()
        return self._layer

    def _make_layer(self):
        """Builds the tokenizer and its lookup tables now, eagerly: made inside the first graph
        that used them, no other graph could reach them."""
        import tensorflow as tf

        keras_hub = import_keras_hub()
        self._layer = keras_hub.tokenizers.WordPieceTokenizer(
            vocabulary=self.words, lowercase=self.lowercase, strip_accents=self.strip_accents,
            oov_token=self.tokens["unknown_token"], name="instruction_tokenizer",
            _allow_python_workflow=False)
        self._layer(tf.constant([""]))

    def count(self, instruction):
        """Positions ``instruction`` takes: its pieces plus start and end; 0 when empty."""
        pieces = self.pieces(instruction)
        return len(pieces) + 2 if pieces else 0

    def ids_of(self, instructions):
        """Token ids of a batch of instruction strings (TensorFlow ops; in graphs too)."""
        import tensorflow as tf

        strings = tf.reshape(tf.convert_to_tensor(instructions, tf.string), [-1])
        if tf.executing_eagerly():  # keras-hub returns Python lists eagerly: run as a graph
            if self._graph_ids is None:
                self._graph_ids = tf.function(self._ids, reduce_retracing=True)
            return self._graph_ids(strings)
        return self._ids(strings)

    def _ids(self, strings):
        import tensorflow as tf

        pieces = tf.cast(self.layer(strings), tf.int32)  # ragged (batch, pieces)
        said = pieces.row_lengths() > 0
        rows = tf.shape(strings)[0]
        column = lambda i: tf.fill([rows, 1], i)  # noqa: E731
        ids = tf.concat([column(self.start), pieces, column(self.end)], axis=1).to_tensor(PAD)
        ids = tf.where(said[:, None], ids, tf.zeros_like(ids))  # empty: padding only
        return padded_to_length(ids, self.sequence_length, "word pieces")

    def write(self, path):
        """Writes the vocabulary: a comment line with the settings, then one piece per line in
        id order from id 0 (the file a TFLite or ONNX client tokenizes with)."""
        from pix2pix_tf.rundir import write_atomically

        settings = "; ".join(f"{k} {v}" for k, v in self.tokens.items())
        text = (f"# pix2pix_tf wordpiece vocabulary: one piece per line from id 0; "
                f"sequence_length {self.sequence_length}; lowercase {int(self.lowercase)}; "
                f"strip_accents {int(self.strip_accents)}; {settings}\n"
                + "".join(p + "\n" for p in self.words))
        write_atomically(path, lambda tmp: open(tmp, "w", encoding="utf-8").write(text))

    # ------------------------------------------------------------- tokenizing in Python
    def pieces(self, instruction):
        """The WordPiece pieces of one instruction, in plain Python (BERT's basic tokenizer,
        then greedy longest-match-first pieces, ``##`` marking continuations)."""
        text = instruction
        if self.strip_accents:
            text = "".join(c for c in unicodedata.normalize("NFD", text)
                           if unicodedata.category(c) != "Mn")
        if self.lowercase:
            text = text.casefold()
        words = []
        for chunk in re.split(r"\s+", text):
            word = ""
            for char in chunk:
                if _is_punctuation(char) or 0x4E00 <= ord(char) <= 0x9FFF:
                    words += [word, char] if word else [char]
                    word = ""
                elif unicodedata.category(char) not in ("Cc", "Cf"):
                    word += char
            if word:
                words.append(word)
        pieces = []
        for word in words:
            start, found = 0, []
            while start < len(word):
                end = len(word)
                while end > start:
                    piece = ("##" if start else "") + word[start:end]
                    if piece in self._index:
                        break
                    end -= 1
                if end == start:  # no piece matches: the whole word is unknown
                    found = [self.tokens["unknown_token"]]
                    break
                found.append(piece)
                start = end
            pieces += found
        return pieces

    def ids_in_python(self, instruction):
        """Token ids of one instruction without TensorFlow (what a TFLite or ONNX client does
        with the written vocabulary)."""
        pieces = self.pieces(instruction)
        ids = ([self.start] + [self._index[p] for p in pieces] + [self.end]
               if pieces else [])[: self.sequence_length]
        return np.array(ids + [PAD] * (self.sequence_length - len(ids)), np.int32)


# --------------------------------------------------------------------------------- layer
@keras.saving.register_keras_serializable(package="pix2pix_tf")
class PretrainedTextEncoder(keras.layers.Layer):
    """``tokens (b, L) -> features (b, L, d)``: a keras-hub text backbone run on token ids
    (padding, id 0, masked). Frozen by default (``trainable=False``), and then run in inference
    mode always; the backbone's configuration and weights save with the model."""

    def __init__(self, backbone, **kwargs):
        super().__init__(**kwargs)
        if isinstance(backbone, dict):
            import_keras_hub()  # registers the backbone classes
            backbone = keras.saving.deserialize_keras_object(backbone)
        self.backbone = backbone
        self.backbone.trainable = self.trainable
        self.input_keys = sorted(backbone.input) if isinstance(backbone.input, dict) else None

    def call(self, tokens, training=None):
        mask = ops.not_equal(tokens, PAD)
        inputs = {"token_ids": tokens, "padding_mask": mask}
        if self.input_keys is not None:
            if "segment_ids" in self.input_keys:
                inputs["segment_ids"] = ops.zeros_like(tokens)
            unknown = set(self.input_keys) - set(inputs)
            if unknown:
                raise ValueError(f"the text backbone needs inputs {sorted(unknown)} that "
                                 "token ids alone do not give.")
            inputs = {k: inputs[k] for k in self.input_keys}
        outputs = self.backbone(inputs, training=training if self.trainable else False)
        if isinstance(outputs, dict):
            outputs = outputs["sequence_output"]
        return outputs

    def compute_output_shape(self, input_shape):
        return tuple(input_shape) + (self.backbone.hidden_dim,)

    def get_config(self):
        return {**super().get_config(),
                "backbone": keras.saving.serialize_keras_object(self.backbone)}


def load_text_encoder(preset, sequence_length):
    """``(vocabulary, backbone)`` of a keras-hub preset (name, Kaggle/HF handle or folder)."""
    keras_hub = import_keras_hub()

    def load(cls):
        try:
            return cls.from_preset(preset)
        except Exception as error:  # noqa: BLE001  (keras-hub raises many kinds; name the preset)
            raise ValueError(f"could not load the text encoder preset {preset!r}: {error}. Give "
                             "a keras-hub preset name (e.g. 'bert_tiny_en_uncased'), a Kaggle or "
                             "'hf://' handle, or a folder holding a preset.") from error

    # The tokenizer first: an unsupported one is refused before the backbone's weights load.
    vocabulary = WordPieceVocabulary.from_tokenizer(load(keras_hub.tokenizers.Tokenizer),
                                                    sequence_length)
    return vocabulary, load(keras_hub.models.Backbone)
