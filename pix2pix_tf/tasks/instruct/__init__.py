"""The ``instruct`` task: image + text instruction -> edited image (:class:`InstructPix2Pix`).

Everything the editor needs lives in this folder: its model (:mod:`.model`), its text side
(:mod:`.vocabulary`, :mod:`.text`, the optional pretrained encoder :mod:`.pretrained_text`), the
bundled edits (:mod:`.edits`) and its data (:mod:`.data`, registered with the one data entry),
its evaluation (:mod:`.evaluate`), and the :class:`InstructTask` below: its options, its preset,
and what predict, evaluate and export ask of it.

Preset ``instruct`` (``--task instruct``'s default) trains the editor on the bundled edits of the
demo's photos: the same objective and optimiser as pix2pix, a 64x64 crop of 128x128 photos,
``unet`` with 6 halvings and 16 base filters, batch 16 (the matching-aware discriminator's wrong
instructions come from the batch) for 4 + 1 epochs, minutes on a 2-core CPU. At batch 16
BatchNorm's per-image statistics at test time are not the training statistics, so the preset
saves ``inference_mode="moving_average"``. Two options keep the photo's detail in the edits
(benchmarks/NOTES.md, "Sharp edits"): ``pixel_head=32``, a per-pixel head at full resolution
that also sees the input (the U-Net alone reaches full resolution only by interpolating from half
of it, which blurs even exact per-pixel edits), and ``recolour=0.5``, half the training photos
recoloured so the colour edits meet the reds and saturated colours that map tiles lack. And
the output is a colour map of the input (benchmarks/NOTES.md, "The editor's colours as
coefficients"): ``colour_transform`` (the head gives, per pixel, the coefficients of a map of the
input's colours, starting at the identity, instead of painting through tanh) with
``colour_extremes`` (the map also takes each pixel's largest and smallest channel, so that the
hue's half turn is as exact as grayscale or sepia): the photo's own detail passes through.
"""

from dataclasses import dataclass

import tensorflow as tf

from pix2pix_tf.networks import DISCRIMINATORS, GENERATORS
from pix2pix_tf.options import check_choices, option
from pix2pix_tf.tasks.base import Task, crop_examples, register_task
from pix2pix_tf.tasks.instruct import data as _data  # noqa: F401  (registers its data kinds)
from pix2pix_tf.tasks.instruct.edits import EDITS, register_edit
from pix2pix_tf.tasks.instruct.model import InstructPix2Pix
from pix2pix_tf.tasks.instruct.text import TEXT_CONDITIONING, build_text
from pix2pix_tf.tasks.instruct.vocabulary import (
    INSTRUCTION,
    PAD,
    PUNCTUATION,
    TOKENS,
    UNKNOWN,
    WORD_LISTS,
    WordVocabulary,
)

G = "instruct"


@dataclass
class InstructOptions:
    columns: str = option(None, "metadata columns as input=COL,instruction=COL,target=COL "
                          "(default: the usual names)", G)
    edit_size: int = option(128, "data 'edits': photos are resized to this square before "
                            "cropping", G)
    recolour: float = option(0.0, "data 'edits': share of training examples whose photo is "
                             "first recoloured (a random hue rotation and saturation change), "
                             "so the editor meets colours its photos lack (0: off)", G)
    text_dim: int = option(64, "width of the instruction embeddings", G)
    sequence_length: int = option(16, "most words per instruction (with --text-encoder: word "
                                  "pieces, start and end included)", G)
    text_encoder: str = option(None, "a pretrained keras-hub text encoder for the generator: "
                               "preset name, Kaggle/hf:// handle or folder (needs pip install "
                               "'pix2pix_tf[hub]'; default: the built-in encoder learning words "
                               "from scratch)", G)
    text_encoder_trainable: bool = option(False, "fine-tune the pretrained text encoder "
                                          "(default frozen)", G)
    text_blocks: int = option(0, "self-attention blocks in the text encoder (0: masked mean of "
                              "word embeddings)", G)
    text_pooling: str = option("mean", "pool word embeddings equally (mean) or by learned "
                               "weights (attention)", G, ("mean", "attention"))
    subword_buckets: int = option(16384, "hash buckets of the built-in encoder's whole-word and "
                                  "character n-gram vectors, so that it reads spelling (0: a "
                                  "vector per word, trained words only)", G)
    extra_words: str = option("english", "words the built-in encoder may meet beyond its "
                              "training instructions, read by their spelling (so not with "
                              "--subword-buckets 0): 'english' (30,000 common words, bundled) "
                              "or 'none'", G, WORD_LISTS)
    cross_attention: int = option(0, "innermost U-Net levels that also attend to the "
                                  "instruction's words (0: FiLM only)", G)
    text_conditioning: str = option("projection", "how the matching-aware discriminator reads "
                                    "the instruction", G, TEXT_CONDITIONING)
    instruction_dropout: float = option(0.05, "fraction of training instructions blanked (1.0 "
                                        "trains the no-text baseline)", G)
    word_dropout: float = option(0.1, "fraction of training words replaced by the unknown word, "
                                 "for instructions with unseen words", G)
    lambda_mismatch: float = option(1.0, "weight of real images with a wrong instruction among "
                                    "the discriminator's fakes", G)

    def __post_init__(self):
        check_choices(self)
        if self.subword_buckets < 0:
            raise ValueError(f"subword_buckets must be >= 0, got {self.subword_buckets}.")
        if self.text_encoder_trainable and not self.text_encoder:
            raise ValueError("--text-encoder-trainable fine-tunes a pretrained encoder: give "
                             "--text-encoder too.")


class InstructTask(Task):
    name = "instruct"
    summary = "image + text instruction -> edited image (InstructPix2Pix)"
    Options = InstructOptions
    PRESETS = {
        "instruct": dict(data="edits", generator="unet", num_downs=6, ngf=16, ndf=16,
                         crop_size=64, preprocess="crop", batch_size=16, epochs=4,
                         epochs_decay=1, lr_per_step=True, inference_mode="moving_average",
                         pixel_head=32, recolour=0.5, colour_transform=True,
                         colour_extremes=True),
    }
    default_preset = "instruct"
    model_class = InstructPix2Pix
    predict_options = ("instruction", "strength", "allow_empty")
    evaluate_options = ("phrasings", "photo_size")

    def check(self, config):
        for table, name, kind in ((GENERATORS, config.generator, "generator"),
                                  (DISCRIMINATORS, config.discriminator, "discriminator")):
            if name in table and "conditioning" not in table[name].options():
                raise ValueError(f"--{kind} {name} cannot read instructions (it takes no "
                                 "conditioning); the editor needs one that does, such as "
                                 f"{'unet' if kind == 'generator' else 'patchgan'}.")

    def source_options(self, config):
        return {"columns": config.columns, "edit_size": config.edit_size, "seed": config.seed,
                "recolour": config.recolour}

    def conditioning(self, config, train_source):
        text = build_text(
            sequence_length=config.sequence_length, text_encoder=config.text_encoder,
            instructions=None if config.text_encoder else train_source.instructions,
            extra_words=config.extra_words, subword_buckets=config.subword_buckets,
            text_dim=config.text_dim, text_blocks=config.text_blocks,
            text_pooling=config.text_pooling, cross_attention=config.cross_attention,
            text_conditioning=config.text_conditioning,
            text_encoder_trainable=config.text_encoder_trainable)
        extra = dict(vocabulary=text.vocabulary, sequence_length=config.sequence_length,
                     text_dim=config.text_dim, text_encoder=config.text_encoder,
                     text_encoder_trainable=config.text_encoder_trainable,
                     instruction_dropout=config.instruction_dropout,
                     word_dropout=config.word_dropout, subword_buckets=config.subword_buckets,
                     lambda_mismatch=config.lambda_mismatch, seed=config.seed)
        return text.generator_conditioning(), text.discriminator_conditioning(), extra

    def sample_labels(self, inputs):
        texts = inputs.get(INSTRUCTION) if isinstance(inputs, dict) else None
        return None if texts is None else [
            t.decode() if isinstance(t, bytes) else str(t) for t in texts]

    # ----------------------------------------------------------------------------- predict
    def add_predict_arguments(self, group):
        group.add_argument("--instruction", help='what to do, e.g. "make it sepia"')
        group.add_argument("--strength", type=float, default=None,
                           help="1 (default): the model's edit; 0: the input; between: a "
                                "blend; above 1: more")
        group.add_argument("--allow-empty", action="store_true", default=None,
                           help="accept an empty instruction (the model's output without "
                                "guidance)")

    def predictor(self, model, args):
        if args.instruction is None:
            raise ValueError("this model edits as instructed: give --instruction, e.g. "
                             "--instruction \"make it sepia\".")
        allow_empty = bool(args.allow_empty)
        try:
            model.vocabulary.check([args.instruction], allow_empty)
        except ValueError as error:
            raise ValueError(str(error).replace("instruction 0", "the instruction")) from None
        strength = 1.0 if args.strength is None else args.strength
        return lambda image: model.edit(image, args.instruction, strength,
                                        allow_empty=allow_empty, tile=args.tile)

    # ---------------------------------------------------------------------------- evaluate
    def add_evaluate_arguments(self, group):
        group.add_argument("--phrasings", choices=["held_out", "train"], default=None,
                           help="which phrasings of the edits to ask with (default held_out)")
        group.add_argument("--photo-size", type=int, default=None,
                           help="score whole photos resized to this square size (a multiple of "
                           "the generator's) instead of training-size crops; e.g. --data "
                           "edits:skimage --photo-size 256 for scikit-image's everyday photos")

    def evaluate(self, models, args, output):
        from pix2pix_tf.tasks.instruct.evaluate import evaluate_editor

        return evaluate_editor(models, output, data=args.data, split=args.split,
                               phrasings=args.phrasings or "held_out",
                               inference_mode=args.inference_mode,
                               photo_size=args.photo_size)

    # ------------------------------------------------------------------------------ export
    def export_examples(self, model, size, count, data=None, split="test", direction=None):
        trained = model.training_config or {}
        examples = crop_examples(data or trained.get("data") or "edits", size, count,
                                 columns=trained.get("columns"),
                                 edit_size=trained.get("edit_size", 128))
        examples.conditions = {INSTRUCTION: examples.conditions[INSTRUCTION]}
        return examples

    def network_conditions(self, model, conditions):
        return {TOKENS: model.vocabulary.encode(list(conditions[INSTRUCTION]))}

    def serving_inputs(self, model):
        vocabulary = model.vocabulary

        def convert(named):
            return {TOKENS: vocabulary.ids_of(named[INSTRUCTION])}

        return [tf.TensorSpec([None], tf.string, name=INSTRUCTION)], convert, [vocabulary.layer]

    def write_beside(self, model, directory, name):
        # TFLite and ONNX take token ids: their clients need the words behind the ids.
        path = directory / f"{name}_vocabulary.txt"
        model.vocabulary.write(path)
        return [path]

    def web_page(self, model):
        # The page tokenises as WordVocabulary does (lower-case, strip punctuation, split on
        # whitespace, unknown words -> 1, pad with 0, refuse longer instructions).
        vocabulary = model.vocabulary
        if not isinstance(vocabulary, WordVocabulary):
            raise ValueError("this editor's text encoder reads WordPiece pieces of a pretrained "
                             "model, which the page cannot tokenise: use the SavedModel "
                             "(python -m pix2pix_tf.export MODEL --saved-model takes "
                             "instruction strings) or pix2pix_tf.edit in Python.")
        return {"instruction": {"input": TOKENS, "words": list(vocabulary.words),
                                "sequence_length": vocabulary.sequence_length,
                                "pad": PAD, "unknown": UNKNOWN, "punctuation": PUNCTUATION,
                                "uses_text": bool(model.uses_text)},
                "strength": {"min": 0.0, "max": 2.0, "step": 0.05, "default": 1.0}}


TASK = register_task(InstructTask())

__all__ = ["EDITS", "InstructOptions", "InstructPix2Pix", "InstructTask", "TASK",
           "register_edit"]
