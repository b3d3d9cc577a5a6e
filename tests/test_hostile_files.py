"""Hostile files for every other parser of untrusted input, fuzzed (Hypothesis): image headers
and the up-front decode check, ``metadata.jsonl`` and ``--columns``, vocabulary files, a run's
``config.json``, the records inside a ``.keras`` file, and the SavedModel ``encoded`` signature.

Each case ends in a result or the parser's documented error naming the file (``DataError``,
``ValueError``, ``InvalidArgumentError`` for the served model), within a time bound (the
per-case deadline) and a memory bound; the process stays alive. Counts: see ``fuzz_settings``
below (a longer campaign: ``PIX2PIX_FUZZ_EXAMPLES``, tests/fuzzing.py).
"""

import io
import json
import struct
import zipfile
import zlib

import keras
import numpy as np
import pytest
import tensorflow as tf
from fuzzing import fuzz_settings, memory_bound, mutate_bytes, peak_rss_bound
from helpers import tiny_model
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from pix2pix_tf.config import TrainConfig
from pix2pix_tf.data.files import MAX_PIXELS, Pair, Scan, read_header
from pix2pix_tf.data.sources import find_corrupt
from pix2pix_tf.errors import DataError
from pix2pix_tf.inference import load_model
from pix2pix_tf.model import check_records
from pix2pix_tf.tasks.base import saved_direction
from pix2pix_tf.tasks.instruct.data import MetadataSource, read_metadata, resolve_columns
from pix2pix_tf.tasks.instruct.text import read_vocabulary
from pix2pix_tf.tasks.instruct.vocabulary import WordVocabulary, parse_vocabulary_file


def encoded(array, fmt):
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format=fmt)
    return buffer.getvalue()


RNG = np.random.default_rng(25)
PHOTO = np.repeat(np.repeat(RNG.integers(0, 256, (6, 8, 3), dtype=np.uint8), 4, 0), 4, 1)
#: Real files of each format and mode the data reader takes: the fuzzers' seeds.
IMAGES = {
    "rgb.png": encoded(PHOTO, "PNG"),
    "gray16.png": encoded((PHOTO[..., 0].astype(np.uint16) * 257), "PNG"),
    "rgba.png": encoded(np.dstack([PHOTO, PHOTO[..., :1]]), "PNG"),
    "photo.jpg": encoded(PHOTO, "JPEG"),
    "gray.jpg": encoded(PHOTO[..., 0], "JPEG"),
    "photo.bmp": encoded(PHOTO, "BMP"),
}
#: A 24x32 image's header bytes are where its size lives: edits there test the size checks.
HEADER_BYTES = 64


@st.composite
def mutated_image(draw):
    name = draw(st.sampled_from(tuple(IMAGES)))
    data = IMAGES[name]
    end = HEADER_BYTES if draw(st.booleans()) else None  # the header, or anywhere
    return name, mutate_bytes(draw, data, 0, end, max_mutations=3)


@pytest.fixture(scope="module")
def scratch(tmp_path_factory):
    return tmp_path_factory.mktemp("hostile")


# ---------------------------------------------------------------------------- image headers
def test_real_images_read_and_bombs_are_refused_by_their_header(scratch):
    for name, data in IMAGES.items():
        (scratch / name).write_bytes(data)
        info = read_header(scratch / name)
        assert (info.width, info.height) == (32, 24), name
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(
            ">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    for width, height in [(60000, 60000), (8000, 5000), (0, 10)]:  # 3.6 Gpx, 40 Mpx, none
        bomb = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8,
                                                                   2, 0, 0, 0))
                + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b""))
        (scratch / "bomb.png").write_bytes(bomb)
        with pytest.raises(DataError, match=r"bomb\.png: .*(pixels|not a readable image)"):
            read_header(scratch / "bomb.png")
    (scratch / "anim.png").write_bytes(b"GIF89a" + bytes(20))
    with pytest.raises(DataError, match=r"anim\.png: GIF images are not supported"):
        read_header(scratch / "anim.png")


@fuzz_settings(600)
@given(case=mutated_image())
def test_fuzz_image_headers(scratch, case):
    name, data = case
    path = scratch / f"fuzz_{name}"
    path.write_bytes(data)
    with memory_bound(16 << 20):
        try:
            info = read_header(path)
        except DataError as error:
            assert str(error).startswith(f"{path}: ")
            return
    assert 1 <= info.width * info.height <= MAX_PIXELS and 1 <= info.channels <= 4


@fuzz_settings(150)
@given(case=mutated_image())
def test_fuzz_the_up_front_decode_check(scratch, case):
    """Files whose (mutated) header reads are decoded in full, as training decodes them: a
    problem named for the file, or a clean decode of the size the header states."""
    name, data = case
    path = scratch / f"decode_{name}"
    path.write_bytes(data)
    try:
        info = read_header(path)
    except DataError:
        return
    scan = Scan(scratch, "side_by_side", pairs=[Pair(info)])
    with peak_rss_bound(1 << 30):  # at most 36 Mpx at 24 bytes each: 864 MB
        problems = find_corrupt(scan, workers=1)
    assert all(p == path and m for p, m in problems)
    assert (scan.pairs == []) == bool(problems)


# ------------------------------------------------------------------- metadata.jsonl, --columns
JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
                    lambda inner: st.lists(inner, max_size=3)
                    | st.dictionaries(st.text(max_size=8), inner, max_size=3), max_leaves=8)
ROWS = [{"input_image_file_name": "in.png", "edit_prompt": "invert it",
         "edited_image_file_name": "out.png"},
        {"input_image": "in.png", "instruction": "make it sepia", "edited_image": "out.png"}]
COLUMNS = ("input_image_file_name", "edit_prompt", "edited_image_file_name", "input_image",
           "instruction", "edited_image", "caption", "")
HOSTILE_LINES = (b"[" * 100_000 + b"]" * 100_000, b'{"a": ' + b"1" * 5000 + b"}",
                 b"\xff\xfe not utf-8", b'{"edit_prompt": "x"' + b" " * (2 << 20) + b"}", b"[1, 2]",
                 b'"text"', b"{", b"", b"\x00" * 10)


@st.composite
def mutated_metadata(draw):
    rows = [dict(row) for row in ROWS]
    for _ in range(draw(st.integers(1, 3))):
        index = draw(st.integers(0, len(rows) - 1))
        row = rows[index]
        kind = draw(st.sampled_from(("value", "value", "drop", "rename", "add", "row", "line")))
        key = draw(st.sampled_from(COLUMNS))
        if not isinstance(row, dict) and kind not in ("row", "line"):
            continue
        if kind == "value":
            row[key] = draw(st.one_of(JSON, st.sampled_from(("in.png", "../in.png", "/etc/hosts",
                                                             "x" * 5000, "in.png\0", "", " "))))
        elif kind == "drop":
            row.pop(key, None)
        elif kind == "rename" and row:
            row[key] = row.pop(draw(st.sampled_from(tuple(row))))
        elif kind == "add":
            row[draw(st.text(max_size=10))] = draw(JSON)
        elif kind == "row":
            rows[index] = draw(JSON)
        else:
            rows.append(draw(st.sampled_from(HOSTILE_LINES)))
    data = b"\n".join(r if isinstance(r, bytes) else json.dumps(r).encode() for r in rows)
    if draw(st.integers(0, 3)) == 0:
        data = mutate_bytes(draw, data, max_mutations=2)
    return data


@pytest.fixture(scope="module")
def metadata_folder(scratch):
    folder = scratch / "metadata"
    folder.mkdir()
    (folder / "in.png").write_bytes(IMAGES["rgb.png"])
    (folder / "out.png").write_bytes(encoded(255 - PHOTO, "PNG"))
    return folder


def test_hostile_metadata_lines_are_named(metadata_folder):
    path = metadata_folder / "metadata.jsonl"
    good = json.dumps(ROWS[0]).encode()
    for line, match in [(HOSTILE_LINES[0], "line 2: not readable JSON"),
                        (HOSTILE_LINES[1], "line 2: not readable JSON"),
                        (HOSTILE_LINES[2], "line 2: not UTF-8 text"),
                        (HOSTILE_LINES[3], "line 2: longer than 1,048,576 bytes"),
                        (HOSTILE_LINES[4], "line 2: a JSON list, not an object"),
                        (b'{"input_image": 3, "edit_prompt": "x", "edited_image": "out.png"}',
                         "line 2: the input image 3 is not a file name")]:
        path.write_bytes(good + b"\n" + line + b"\n")
        with pytest.raises(DataError, match=f"{path}, {match}"):
            MetadataSource(metadata_folder)
    path.write_bytes(good + b"\n\n" + good + b"\n")
    assert len(MetadataSource(metadata_folder)) == 2


@fuzz_settings(300)
@given(data=mutated_metadata())
def test_fuzz_metadata_jsonl(metadata_folder, data):
    path = metadata_folder / "metadata.jsonl"
    path.write_bytes(data)
    with memory_bound(64 << 20):
        try:
            rows = read_metadata(path)
        except DataError as error:
            assert str(error).startswith(str(path))
            return
    assert all(isinstance(row, dict) for _, row in rows)
    try:
        source = MetadataSource(metadata_folder)
    except DataError as error:
        assert str(path) in str(error) or "in.png" in str(error) or "out.png" in str(error)
        return
    assert len(source) == len(rows)


@fuzz_settings(500)
@given(available=st.lists(st.sampled_from(COLUMNS) | st.text(max_size=12), max_size=6),
       columns=st.one_of(st.text(max_size=60), st.sampled_from(
           ("input=in,instruction=caption,target=out", "instruction=caption", "=", ",,=,",
            "input", "input=a=b", "instruction=", " = "))))
def test_fuzz_columns_option(available, columns):
    try:
        chosen = resolve_columns(available, columns, where="metadata.jsonl")
    except DataError:
        return
    assert set(chosen) == {"input", "instruction", "target"}
    assert all(name in available or f"{name}_file_name" in available for name in chosen.values())


# -------------------------------------------------------------------------- vocabulary files
WORDS = ["make", "it", "sepia", "blur", "invert", "the", "colours"]
WORDPIECE = ("# pix2pix_tf wordpiece vocabulary: one piece per line from id 0; sequence_length "
             "12; lowercase 1; strip_accents 1; unknown_token [UNK]; start_token [CLS]; "
             "end_token [SEP]\n" + "".join(p + "\n" for p in ["[PAD]", "[UNK]", "[CLS]", "[SEP]",
                                                               *WORDS, "##s"])).encode()


@pytest.fixture(scope="module")
def vocabulary_files(scratch):
    path = scratch / "pix2pix_vocabulary.txt"
    WordVocabulary(WORDS, 16).write(path)
    return {"words": path.read_bytes(), "wordpiece": WORDPIECE}


@st.composite
def mutated_vocabulary(draw, files):
    data = files[draw(st.sampled_from(("words", "wordpiece")))]
    lines = data.split(b"\n")
    kind = draw(st.sampled_from(("number", "line", "bytes", "bytes")))
    if kind == "number":
        lines[0] = lines[0].replace(b"sequence_length 1", b"sequence_length " + draw(
            st.sampled_from((b"", b"-", b"0", b"99999999", b"\xd9\xa3", b"1_0", b"0x1", b" "))))
    elif kind == "line":
        i = draw(st.integers(0, len(lines) - 1))
        lines[i] = draw(st.sampled_from((b"", b"\r", b"make", b"[UNK]", b"# pix2pix_tf",
                                         b"lowercase 2", b"\x85", b"\xff")))
    data = b"\n".join(lines)
    if kind == "bytes":
        data = mutate_bytes(draw, data, max_mutations=3)
    return data


def test_hostile_vocabularies_are_named_and_real_ones_read(scratch, vocabulary_files):
    path = scratch / "vocabulary.txt"
    path.write_bytes(vocabulary_files["words"])
    assert read_vocabulary(path).words == WORDS
    path.write_bytes(WORDPIECE)  # what a TFLite / ONNX client reads (keras-hub not needed)
    pieces = read_vocabulary(path)
    assert pieces.ids_in_python("make it sepias").tolist() == [2, 4, 5, 6, 11, 3] + [0] * 6
    for data, match in [(b"", "not a pix2pix_tf vocabulary file"),
                        (b"\xff\xfe", "not UTF-8 text"),
                        (vocabulary_files["words"] + b"make\n", r"line 9: 'make' again"),
                        (vocabulary_files["words"].replace(b"16", b"99999999"),
                         "sequence_length '99999999' is not a number from 1 to 65,536"),
                        (WORDPIECE.replace(b"\n[SEP]\n", b"\nx\n"), r"lacks the special token"),
                        (WORDPIECE.replace(b"lowercase 1", b"lowercase yes"),
                         "lowercase is 'yes', not 0 or 1"),
                        (WORDPIECE.replace(b"; end_token [SEP]", b""), "lacks end_token")]:
        path.write_bytes(data)
        with pytest.raises(DataError, match=f"{path}.*{match}"):
            read_vocabulary(path)


def test_fuzz_vocabulary_files(scratch, vocabulary_files):
    @fuzz_settings(600)
    @given(data=mutated_vocabulary(vocabulary_files))
    def fuzz(data):
        path = scratch / "fuzz_vocabulary.txt"
        path.write_bytes(data)
        with memory_bound(16 << 20):
            try:
                kind, entries, length, settings = parse_vocabulary_file(path)
            except DataError as error:
                assert str(error).startswith(str(path))
                return
        assert kind in ("words", "wordpiece") and entries and len(set(entries)) == len(entries)
        assert 1 <= length <= 1 << 16

    fuzz()


# ---------------------------------------------------------------------- config.json, records
CONFIGS = [TrainConfig.create().to_dict(), TrainConfig.create(task="instruct").to_dict()]


@st.composite
def mutated_config(draw):
    values = dict(CONFIGS[draw(st.integers(0, 1))])
    for _ in range(draw(st.integers(1, 3))):
        key = draw(st.sampled_from(tuple(values) or ("task",)))
        kind = draw(st.sampled_from(("value", "value", "value", "drop", "add", "swap")))
        if kind == "value":
            values[key] = draw(st.one_of(JSON, st.sampled_from(
                (None, True, 0, -1, 2 ** 63, 1e308, "nan", "translate", "instruct", "10min",
                 "500", [1], {"a": 1}))))
        elif kind == "drop":
            values.pop(key, None)
        elif kind == "add":
            values[draw(st.text(max_size=12))] = draw(JSON)
        else:
            other = draw(st.sampled_from(tuple(values) or ("task",)))
            values[key], values[other] = values.get(other), values.get(key)
    data = json.dumps(values).encode()
    if draw(st.integers(0, 3)) == 0:
        data = mutate_bytes(draw, data, max_mutations=2)
    if draw(st.integers(0, 15)) == 0:
        data = draw(st.sampled_from((b"[" * 100_000, b"[1, 2]", b"\xff", b"NaN", b"{}")))
    return data


def test_hostile_config_json_is_a_value_error_naming_the_file(scratch):
    path = scratch / "config.json"
    for data, match in [(b"[1, 2]", "a JSON list, not an object"), (b"{", "not JSON"),
                        (b"[" * 100_000, "not readable JSON"),
                        (json.dumps({**CONFIGS[0], "batch_size": "2"}).encode(),
                         "batch_size must be an integer, got '2'"),
                        (json.dumps({**CONFIGS[0], "lr": float("nan")}).encode(),
                         "lr must be a number"),
                        (json.dumps({**CONFIGS[0], "epochs": None}).encode(),
                         "epochs must be an integer, got None")]:
        path.write_bytes(data)
        with pytest.raises(ValueError, match=f"{path}: .*{match}"):
            TrainConfig.load(path)
    path.write_text(json.dumps(CONFIGS[1]))
    assert TrainConfig.load(path).to_dict() == CONFIGS[1]


def test_typed_options_still_take_what_people_pass_from_python(scratch):
    """Type checks refuse a hostile file's values, not a path or a NumPy number from code."""
    from pathlib import Path

    config = TrainConfig(data=Path("pairs"), run_dir=scratch / "run", epochs=np.int64(2),
                         lr=np.float32(1e-4))
    assert config.data == "pairs" and config.run_dir == str(scratch / "run")
    assert json.loads(config.to_json())["epochs"] == 2
    with pytest.raises(ValueError, match="epochs must be an integer"):
        TrainConfig(epochs=2.5)


@fuzz_settings(400)
@given(data=mutated_config())
def test_fuzz_config_json(scratch, data):
    path = scratch / "fuzz_config.json"
    path.write_bytes(data)
    with memory_bound(16 << 20):
        try:
            config = TrainConfig.load(path)
        except ValueError as error:  # OptionError and DataError are ValueErrors too
            assert str(error).startswith(f"{path}: ")
            return
    assert TrainConfig.from_dict(config.to_dict()).to_dict() == config.to_dict()


CARD = {"name": "sat2map", "dataset": "maps", "direction": "AtoB", "input": "aerial photo",
        "output": "map", "preparation": "RGB, 256x256"}


@st.composite
def mutated_records(draw):
    config, card = dict(CONFIGS[draw(st.integers(0, 1))]), dict(CARD)
    for _ in range(draw(st.integers(1, 3))):
        record = draw(st.sampled_from((config, card)))
        key = draw(st.sampled_from(("direction", "data", "columns", "crop_size", "edit_size",
                                    "name", "input", "x")))
        record[key] = draw(st.one_of(JSON, st.sampled_from(("BtoA", "sideways", 0, 10 ** 9, -5,
                                                            256, True, float("nan")))))
    whole = draw(st.sampled_from((None, "config", "card")))
    if whole == "config":
        config = draw(JSON)
    elif whole == "card":
        card = draw(JSON)
    return config, card


class Carrier:
    def __init__(self, config, card):
        self.training_config, self.model_card = config, card


@fuzz_settings(400)
@given(records=mutated_records())
def test_fuzz_model_records(records):
    config, card = records
    try:
        check_records(config, card)
    except ValueError:
        return
    # what commands read back from a loaded model is then of the right kind
    assert saved_direction(Carrier(config, card)) in (None, "AtoB", "BtoA")
    for key in ("crop_size", "edit_size"):
        assert (config or {}).get(key) is None or 1 <= config[key] <= 1 << 14
    assert all(isinstance(v, str) for v in (card or {}).values())


def test_hostile_records_in_a_keras_file_are_data_errors_naming_it(scratch):
    model = tiny_model(seed=3)
    model.compile()
    path = scratch / "tiny.keras"
    model.save(path)
    with zipfile.ZipFile(path) as archive:
        files = {name: archive.read(name) for name in archive.namelist()}
    for record, value, match in [("training_config", [["data", "x"]], "training_config must map"),
                                 ("training_config", {"edit_size": 10 ** 9}, "edit_size must be"),
                                 ("model_card", {"input": "photo", "name": ["x"]},
                                  "card's 'name' must be text")]:
        config = json.loads(files["config.json"])
        config["config"][record] = value
        hostile = scratch / "hostile.keras"
        with zipfile.ZipFile(hostile, "w") as archive:
            for name, data in files.items():
                archive.writestr(name, json.dumps(config) if name == "config.json" else data)
        with pytest.raises(DataError, match=rf"{hostile}: not a loadable Keras model .*{match}"):
            load_model(hostile)
    assert isinstance(load_model(path), keras.Model)


# ------------------------------------------------------------ the SavedModel encoded signature
@pytest.fixture(scope="module")
def encoded_signature(tmp_path_factory):
    from pix2pix_tf.exporters import export_saved_model

    path = export_saved_model(tiny_model(seed=4), tmp_path_factory.mktemp("served"))
    return tf.saved_model.load(str(path)).signatures["encoded"]


def test_fuzz_the_encoded_signature(encoded_signature):
    """Random edits of real PNG and JPEG bytes sent to a served model: an image back, or
    INVALID_ARGUMENT; the server keeps serving."""
    served = {"ok": 0, "refused": 0}

    @fuzz_settings(100)
    @given(case=mutated_image().filter(lambda case: not case[0].endswith(".bmp")))
    def fuzz(case):
        with peak_rss_bound(1 << 30):
            try:
                out = encoded_signature(image_bytes=tf.constant([case[1]]))["output_bytes"]
            except tf.errors.InvalidArgumentError:
                served["refused"] += 1
                return
        assert Image.open(io.BytesIO(out.numpy()[0])).size[0] >= 1
        served["ok"] += 1

    fuzz()
    assert served["ok"] and served["refused"]
    out = encoded_signature(image_bytes=tf.constant([IMAGES["rgb.png"]]))["output_bytes"]
    assert Image.open(io.BytesIO(out.numpy()[0])).size == (32, 24)
