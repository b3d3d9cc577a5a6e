"""Instructions as token ids: the vocabulary contract, and the built-in word vocabulary.

Strings never enter a network. A :class:`Vocabulary` turns instructions into fixed-length int32
token ids (0 = padding) in TensorFlow ops (so a SavedModel can take strings), and in plain Python
(:meth:`Vocabulary.ids_in_python`, what a TFLite or ONNX client does with the file
:meth:`Vocabulary.write` puts beside the model). Networks take the ids as an input named
``"tokens"``. Two vocabularies keep this contract:

- :class:`WordVocabulary`, the built-in encoder's: whole words after lower-casing and stripping
  punctuation (``keras.layers.TextVectorization``), 1 = an unknown word;
- :class:`pix2pix_tf.tasks.instruct.pretrained_text.WordPieceVocabulary`, a pretrained
  encoder's WordPiece pieces between start and end tokens.

:func:`pix2pix_tf.tasks.instruct.text.make_vocabulary` rebuilds either from the ``spec`` saved
in a model's config; :func:`pix2pix_tf.tasks.instruct.text.read_vocabulary` either from its file.
"""

import collections
import re
from pathlib import Path

import keras
import numpy as np

from pix2pix_tf.errors import DataError
from pix2pix_tf.rundir import write_atomically

#: The name of the token-ids input of conditioned networks.
TOKENS = "tokens"
#: The name of the instruction-string field of data and models.
INSTRUCTION = "instruction"
#: Token ids reserved by TextVectorization: padding and out-of-vocabulary words.
PAD, UNKNOWN = 0, 1

#: The characters TextVectorization's 'lower_and_strip_punctuation' removes (web pages too).
PUNCTUATION = "!\"#$%&()*+,-./:;<=>?@[\\]^_`{|}~'"
#: The largest vocabulary file read (BERT's is 230 KB, 30,000 English words about 250 KB).
MAX_VOCABULARY_BYTES = 64 << 20
#: The longest instruction (token ids) a vocabulary file may declare.
MAX_SEQUENCE_LENGTH = 1 << 16
_WORDS_HEADER = "# pix2pix_tf vocabulary:"
_WORDPIECE_HEADER = "# pix2pix_tf wordpiece vocabulary:"
_WORDPIECE_FIELDS = ("sequence_length", "lowercase", "strip_accents", "unknown_token",
                     "start_token", "end_token")

_PUNCTUATION = re.compile("[" + re.escape(PUNCTUATION) + "]")


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
    ``pix2pix_tf/tasks/instruct/english_words.txt``), most frequent first."""
    path = Path(__file__).parent / "english_words.txt"
    return [line for line in path.read_text(encoding="utf-8").splitlines()
            if line and not line.startswith("#")]


def word_list(name):
    """The words a :data:`WORD_LISTS` name stands for."""
    if name not in WORD_LISTS:
        raise ValueError(f"Unknown word list {name!r}; choose one of {', '.join(WORD_LISTS)}.")
    return english_words() if name == "english" else []


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


def parse_vocabulary_file(path):
    """What a file :meth:`Vocabulary.write` wrote says, checked: ``(kind, entries,
    sequence_length, settings)`` with kind ``"words"`` (:class:`WordVocabulary`) or
    ``"wordpiece"`` (its ``settings``: lowercase, strip_accents and the special tokens). Such a
    file sits beside an exported TFLite or ONNX model, so it may come from anywhere: a
    ``DataError`` names the file and what is wrong with it (not UTF-8, larger than
    :data:`MAX_VOCABULARY_BYTES`, an unknown first line, a missing or out-of-range setting, an
    empty or repeated entry, a special token missing)."""
    path = Path(path)
    if path.stat().st_size > MAX_VOCABULARY_BYTES:
        raise DataError(f"{path}: {path.stat().st_size:,} bytes, more than a vocabulary file's "
                        f"{MAX_VOCABULARY_BYTES:,}.")
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as error:
        raise DataError(f"{path}: not UTF-8 text ({error.reason} at byte {error.start}); not a "
                        "pix2pix_tf vocabulary file.") from None
    lines = text.split("\n")  # as written: not splitlines(), which also splits at \x0c, \x85
    if lines[-1] == "":
        lines.pop()
    header = lines[0] if lines else ""
    if header.startswith(_WORDPIECE_HEADER):
        kind, settings = "wordpiece", {}
        for part in header.split(";")[1:]:
            key, _, value = part.strip().partition(" ")
            settings[key] = value
        missing = [k for k in _WORDPIECE_FIELDS if k not in settings]
        if missing:
            raise DataError(f"{path}: the first line lacks {', '.join(missing)}; write the file "
                            "again with Vocabulary.write (or export the model again).")
        length = settings.pop("sequence_length")
        for flag in ("lowercase", "strip_accents"):
            if settings[flag] not in ("0", "1"):
                raise DataError(f"{path}: {flag} is {settings[flag]!r:.40}, not 0 or 1.")
            settings[flag] = settings[flag] == "1"
        settings = {k: settings[k] for k in _WORDPIECE_FIELDS[1:]}
    elif header.startswith(_WORDS_HEADER):
        kind, settings = "words", {}
        length = header.rsplit(" ", 1)[-1] if " sequence_length " in header else ""
    else:
        raise DataError(f"{path}: not a pix2pix_tf vocabulary file (its first line, "
                        f"{header[:60]!r}, should start with {_WORDS_HEADER!r} or "
                        f"{_WORDPIECE_HEADER!r}).")
    smallest = 3 if kind == "wordpiece" else 1
    if not (re.fullmatch(r"[0-9]{1,6}", length) and smallest <= int(length) <= MAX_SEQUENCE_LENGTH):
        raise DataError(f"{path}: sequence_length {length[:20]!r} is not a number from "
                        f"{smallest} to {MAX_SEQUENCE_LENGTH:,}.")
    entries, seen = lines[1:], {}
    for number, entry in enumerate(entries, 2):
        if not entry.strip() or "\r" in entry:
            raise DataError(f"{path}, line {number}: an empty entry (or Windows line ends); one "
                            "word per line, as Vocabulary.write wrote it.")
        if entry in seen:
            raise DataError(f"{path}, line {number}: {entry[:40]!r} again (first on line "
                            f"{seen[entry]}); each entry is one token id.")
        seen[entry] = number
    if not entries:
        raise DataError(f"{path}: no entries after the first line.")
    missing = [token for key, token in settings.items() if key.endswith("_token")
               and token not in seen]
    if missing:
        raise DataError(f"{path}: lacks the special token(s) {missing}.")
    return kind, entries, int(length), settings


class Vocabulary:
    """The contract every vocabulary keeps (instructions -> ``(batch, sequence_length)`` int32
    ids, 0 = padding). Longer instructions are an error, never silently cut: eagerly a
    ``ValueError`` naming the instruction, in a graph an ``InvalidArgumentError`` with the same
    advice. An empty instruction is padding only ("no edit guidance").

    Subclasses set ``words`` (id order, as written to files), ``sequence_length``, ``unknown``
    (the id word dropout substitutes) and ``special_ids`` (ids never dropped), and implement
    :attr:`size`, :attr:`spec`, :meth:`ids_of`, :meth:`count`, :meth:`ids_in_python`,
    :meth:`write` and :meth:`read`.
    """

    #: Words (or pieces) in id order; ``sequence_length``: ids per instruction.
    words, sequence_length = (), 0
    #: Token id that word dropout substitutes; ids never dropped (start / end tokens).
    unknown, special_ids = UNKNOWN, ()
    #: What an instruction's positions are called in messages.
    unit = "words"

    @property
    def size(self):
        """Number of token ids (the networks' embedding rows)."""
        raise NotImplementedError

    @property
    def spec(self):
        """JSON-able description that ``make_vocabulary`` rebuilds this from (saved in model
        configs)."""
        raise NotImplementedError

    def count(self, instruction):
        """Positions ``instruction`` takes (0: empty)."""
        return len(words(instruction))

    def check(self, instructions, allow_empty=False):
        """:func:`check_instructions` for this vocabulary."""
        return check_instructions(instructions, self.sequence_length, allow_empty,
                                  count=self.count, unit=self.unit)

    def ids_of(self, instructions):
        """Token ids of a batch of instruction strings, in TensorFlow ops (graphs too)."""
        raise NotImplementedError

    def encode(self, instructions, allow_empty=False):
        """NumPy token ids of instructions checked with :meth:`check`."""
        return self.ids_of(self.check(instructions, allow_empty)).numpy()

    def ids_in_python(self, instruction):
        """Token ids of one instruction without TensorFlow."""
        raise NotImplementedError

    def write(self, path):
        """Writes the file a TFLite / ONNX client tokenizes with."""
        raise NotImplementedError

    #: The kind :func:`parse_vocabulary_file` reports for this class's files.
    file_kind = None

    @classmethod
    def read(cls, path):
        """The vocabulary :meth:`write` wrote (checked: :func:`parse_vocabulary_file`)."""
        kind, entries, length, settings = parse_vocabulary_file(path)
        if kind != cls.file_kind:
            raise DataError(f"{path}: a {kind} vocabulary, not a {cls.file_kind} one; read it "
                            "with pix2pix_tf.tasks.instruct.text.read_vocabulary.")
        return cls(entries, length, **settings)


class WordVocabulary(Vocabulary):
    """The built-in encoder's vocabulary: whole words, by ``keras.layers.TextVectorization``.

    ``vocabulary``: the known words (ids 2, 3, ... in that order). Longer instructions are an
    error, never silently cut: eagerly a ``ValueError`` naming the instruction, in a graph an
    ``InvalidArgumentError`` with the same advice.
    """

    file_kind = "words"

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

    @property
    def size(self):
        """Number of token ids, padding and unknown included."""
        return len(self.words) + 2

    @property
    def spec(self):
        """What :func:`make_vocabulary` rebuilds this from (saved in model configs)."""
        return list(self.words)

    def ids_of(self, instructions):
        """Token ids of a batch of instruction strings (a 1-D string tensor or list)."""
        import tensorflow as tf

        strings = tf.reshape(tf.convert_to_tensor(instructions, tf.string), [-1])
        ids = tf.cast(self.layer(strings), tf.int32)  # (batch, longest)
        return padded_to_length(ids, self.sequence_length, "words")

    def write(self, path):
        """Writes the vocabulary, one word per line in id order from id 2 (ids 0 and 1 are
        padding and unknown words), with the sequence length in a comment line first."""
        text = (f"# pix2pix_tf vocabulary: ids 0 = padding, 1 = unknown word, then one word per "
                f"line from id 2; sequence_length {self.sequence_length}\n"
                + "".join(w + "\n" for w in self.words))
        write_atomically(path, lambda tmp: open(tmp, "w", encoding="utf-8").write(text))

    def ids_in_python(self, instruction):
        """Token ids of one instruction without TensorFlow (what a TFLite or ONNX client does
        with the written vocabulary)."""
        index = {w: i + 2 for i, w in enumerate(self.words)}
        ids = [index.get(w, UNKNOWN) for w in words(instruction)][: self.sequence_length]
        return np.array(ids + [PAD] * (self.sequence_length - len(ids)), np.int32)
