"""Other people's model files, bounded: a ``.keras`` file whose config asks for an enormous
layer, whose weights entry inflates far past its size, or whose config nests absurdly deep is
refused with one line naming the file, what it asks for and the bound, before anything large is
allocated; real models load, and an explicit bound lets one's own big models through. Fuzzed
on the numbers of a real config."""

import json
import zipfile

import keras
import pytest
from fuzzing import INTERESTING_INTS, fuzz_settings, peak_rss_bound
from helpers import tiny_model
from hypothesis import given
from hypothesis import strategies as st

from pix2pix_tf.errors import DataError
from pix2pix_tf.loading import check_archive, load_model, nesting_depth, parameter_bound

#: What refusing a hostile file may add to the process's resident memory: nothing large is
#: allocated (Keras' and TensorFlow's bookkeeping for a failed build is a few MB).
REFUSAL_RSS = 300 << 20
#: What loading or refusing any file may add: a model within the bound of 200 million
#: parameters is built (at most 0.8 GB), and nothing beyond.
ANY_RSS = 1536 << 20


@pytest.fixture(scope="module")
def real(tmp_path_factory):
    """A real trained-model file and its entries."""
    path = tmp_path_factory.mktemp("real") / "tiny.keras"
    model = tiny_model(seed=3)
    model.compile()
    model.save(path)
    with zipfile.ZipFile(path) as archive:
        files = {name: archive.read(name) for name in archive.namelist()}
    return path, files


def write(path, files, **replaced):
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in {**files, **replaced}.items():
            archive.writestr(name, data)
    return path


def with_filters(config, filters):
    """The config with the generator's first convolution asking for ``filters`` filters."""
    layers = config["config"]["generator"]["config"]["layers"]
    conv = next(layer for layer in layers if "filters" in layer["config"])
    conv["config"]["filters"] = filters
    return config


def test_real_models_load_and_the_bound_can_be_raised_or_lowered(real, monkeypatch):
    path, _ = real
    assert isinstance(load_model(path), keras.Model)
    with pytest.raises(DataError, match=r"tiny.keras: it asks for more than 1,000 parameters"):
        load_model(path, max_parameters=1000)
    monkeypatch.setenv("PIX2PIX_MAX_PARAMETERS", "1000")
    assert parameter_bound() == 1000
    with pytest.raises(DataError, match="--max-parameters N"):
        load_model(path)
    assert isinstance(load_model(path, max_parameters=10 ** 7), keras.Model)


def test_an_enormous_layer_is_refused_before_it_is_allocated(real, tmp_path):
    path, files = real
    config = with_filters(json.loads(files["config.json"]), 30_000_000)  # a 5.8 GB kernel
    hostile = write(tmp_path / "huge.keras", files, **{"config.json": json.dumps(config)})
    with peak_rss_bound(REFUSAL_RSS):
        with pytest.raises(DataError) as error:
            load_model(hostile)
    message = str(error.value)
    assert message.startswith(f"{hostile}: it asks for more than 200,000,000 parameters")
    assert "(4, 4, 3, 30000000)" in message and "\n" not in message


def test_a_weights_entry_that_inflates_past_its_bound_is_refused_unread(real, tmp_path):
    path, files = real
    hostile = tmp_path / "bomb.keras"
    with zipfile.ZipFile(hostile, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            if name != "model.weights.h5":
                archive.writestr(name, data)
        with archive.open("model.weights.h5", "w") as entry:  # 100 MB of zeros, 100 KB stored
            for _ in range(100):
                entry.write(bytes(1 << 20))
    assert hostile.stat().st_size < 1 << 20
    with peak_rss_bound(REFUSAL_RSS):
        # the bound: 4 bytes for each of the 100,000 parameters, plus HDF5's 64 MiB of slack
        with pytest.raises(DataError, match=r"its model.weights.h5 holds 104,857,600 bytes once "
                                            r"decompressed, more than the 67,508,864 allowed"):
            load_model(hostile, max_parameters=100_000)


def test_a_config_nested_deep_is_refused_without_recursing(real, tmp_path):
    path, files = real
    deep = "[" * 100_000 + "]" * 100_000
    hostile = write(tmp_path / "deep.keras", files, **{"config.json": deep})
    with peak_rss_bound(REFUSAL_RSS):
        with pytest.raises(DataError, match="nested deeper than 200 levels"):
            load_model(hostile)
    medium = json.loads(files["config.json"])
    medium["config"]["model_card"] = {"x": json.loads("[" * 300 + "]" * 300)}
    hostile = write(tmp_path / "medium.keras", files, **{"config.json": json.dumps(medium)})
    with pytest.raises(DataError, match="nested 30[0-9] levels deep, more than 200"):
        check_archive(hostile)
    assert nesting_depth({"a": [1, {"b": []}]}) == 4 and nesting_depth(5) == 0


def test_not_a_zip_and_no_config_are_named(real, tmp_path):
    path, files = real
    junk = tmp_path / "junk.keras"
    junk.write_bytes(b"PK\x03\x04 not really")
    with pytest.raises(DataError, match=rf"{junk}: not a loadable Keras model \(not a zip"):
        load_model(junk)
    empty = write(tmp_path / "empty.keras", {"metadata.json": files["metadata.json"]})
    with pytest.raises(DataError, match="no config.json inside"):
        load_model(empty)


@st.composite
def config_numbers(draw, text):
    """The config with one to three of its whole numbers replaced by numbers that break
    parsers and allocators."""
    config = json.loads(text)
    places = []

    def walk(node):
        for key, value in (node.items() if isinstance(node, dict) else enumerate(node)):
            if isinstance(value, (dict, list)):
                walk(value)
            elif type(value) is int:
                places.append((node, key))

    walk(config)
    for _ in range(draw(st.integers(1, 3))):
        node, key = draw(st.sampled_from(places))
        node[key] = draw(st.sampled_from(INTERESTING_INTS))
    return json.dumps(config)


def test_fuzz_the_numbers_of_a_real_config(real, tmp_path_factory):
    path, files = real
    folder = tmp_path_factory.mktemp("fuzz")
    outcomes = {"loaded": 0, "refused": 0}

    @fuzz_settings(40)
    @given(text=config_numbers(files["config.json"].decode()))
    def case(text):
        hostile = write(folder / "case.keras", files, **{"config.json": text})
        with peak_rss_bound(ANY_RSS):
            try:
                load_model(hostile)
                outcomes["loaded"] += 1
            except DataError as error:
                assert str(error).startswith(str(hostile)) and "\n" not in str(error)
                outcomes["refused"] += 1

    case()
    assert outcomes["refused"] > 0
