"""Publishing a trained model to the Hugging Face Hub with a model card: ``python -m
pix2pix_tf.export MODEL --hub user/repo`` (``--dry-run``: write it locally only), or
:func:`publish`.

The folder that goes up holds the model in the layout Keras' own ``model.save("hf://...")``
writes (``config.json``, ``metadata.json``, ``model.weights.h5``). ``keras.saving.load_model(
"hf://user/repo")``, ``--model hf://user/repo`` and ``train --init hf://user/repo`` read it as
it is. Beside the model go:

- ``README.md``: the model card. Its metadata header is what the Hub indexes: library, task tag,
  licence, datasets. The body gives what the model is, how it was trained, its metrics (from an
  evaluation's ``metrics.json``, else the run's last validation epoch), the sample grid, and how
  to load and run it from Python, the command line and the web page;
- ``sample.png``: the run's final sample grid (input | target | output), when the run has one;
- optionally ``web/``, the static page of ``export --web``.
"""

import csv
import json
import shutil
from pathlib import Path

from pix2pix_tf.networks import as_generator
from pix2pix_tf.tasks import task_of

#: The Hub's name for this library's models (its ``library_name``): Keras loads them.
LIBRARY = "keras"
#: Metrics shown in the card, in order, with their labels.
CARD_METRICS = {"l1": "L1 (lower is better)", "psnr": "PSNR, dB", "ssim": "SSIM",
                "grid": "grid (lattice; ~1 = none)", "sharp": "sharp (fine detail vs targets)",
                "swd": "SWD x1e3 (texture; lower is better)"}


def run_metrics(model_path, metrics_file=None):
    """(metrics, where they come from): an evaluation's ``metrics.json`` (``metrics_file``, or
    ``evaluation/metrics.json`` in the model's run directory), else the run's last validation
    epoch in ``history.csv``; ({}, None) when there are none."""
    run = Path(model_path).parent if model_path else None
    candidates = [Path(metrics_file)] if metrics_file else (
        [run / "evaluation" / "metrics.json"] if run else [])
    for path in candidates:
        if path.is_file():
            data = json.loads(path.read_text())
            row = data["results"].get("model") or next(iter(data["results"].values()))
            return ({k: row[k] for k in CARD_METRICS if k in row},
                    data.get("info") or f"evaluation {path}")
    history = run / "history.csv" if run else None
    if history and history.is_file():
        rows = list(csv.DictReader(history.open()))
        if rows:
            last = rows[-1]
            found = {k: float(last[f"val_{k}"]) for k in CARD_METRICS if last.get(f"val_{k}")}
            return found, f"validation after epoch {int(last['epoch']) + 1} (history.csv)"
    return {}, None


def model_card(model, repo_id, *, metrics=None, metrics_source=None, license="other",
               sample=False, web=False):
    """The README.md of the Hub repository ``repo_id`` for ``model``: metadata header, then the
    card's body (see the module docstring)."""
    trained = getattr(model, "training_config", None) or {}
    card = getattr(model, "model_card", None) or {}
    task, generator = task_of(model).name, as_generator(model)
    data = trained.get("data") or card.get("dataset")
    datasets = [data[3:]] if isinstance(data, str) and data.startswith("hf:") else []
    header = ["---", f"library_name: {LIBRARY}", f"license: {license}",
              "pipeline_tag: image-to-image",
              "tags:", "- pix2pix", "- pix2pix_tf", "- image-to-image", "- conditional-gan",
              f"- {task}"]
    if datasets:
        header += ["datasets:", *[f"- {name}" for name in datasets]]
    header.append("---")
    body = [f"# {repo_id.rsplit('/', 1)[-1]}", "",
            _summary(model, task, generator, trained, card), ""]
    if metrics:
        body += ["## Metrics", "", f"On {metrics_source}:", "", "| measure | value |",
                 "|---|---|", *[f"| {CARD_METRICS[k]} | {v:.4g} |" for k, v in metrics.items()],
                 ""]
    if sample:
        body += ["## Samples", "", "Input | target | output, held-out pairs:", "",
                 "![samples](sample.png)", ""]
    body += _usage(repo_id, generator, web)
    body += ["## Licence", "", f"`{license}`. The training data's own licence applies to the "
             "weights; check it before reuse.", ""]
    return "\n".join(header + body)


def _summary(model, task, generator, trained, card):
    what = ("An instruction editor (image + text instruction -> edited image)"
            if task == "instruct" else "A pix2pix translator (paired image-to-image)")
    params = generator.count_params()
    lines = [f"{what}, trained with pix2pix_tf (Keras 3 / TensorFlow).", "",
             f"- generator: {trained.get('generator') or card.get('network') or 'unet'}, "
             f"{params:,} parameters; {generator.input_channels}-channel input, "
             f"{generator.output_channels}-channel output, sides a multiple of "
             f"{generator.size_multiple}",
             f"- inference mode: {model.inference_mode}"]
    if trained:
        lines += [f"- data: `{trained.get('data')}`, {trained.get('direction', 'AtoB')}, "
                  f"{trained.get('crop_size')}x{trained.get('crop_size')} crops, "
                  f"{trained.get('epochs', 0) + trained.get('epochs_decay', 0)} epochs, "
                  f"preset `{trained.get('preset')}`"]
        if trained.get("init"):
            lines.append(f"- fine-tuned from `{trained['init']}`")
    elif card:
        lines += [f"- {k}: {v}" for k, v in card.items() if k in ("dataset", "direction",
                                                                 "source")]
    return "\n".join(lines)


def _usage(repo_id, generator, web):
    hub = f"hf://{repo_id}"
    inputs = "--input photo.png" + (" --instruction 'make it sepia'"
                                    if generator.condition_inputs else "")
    lines = ["## Use", "", "Python (`pip install pix2pix_tf huggingface_hub`):", "", "```python",
             "import keras, pix2pix_tf", f'model = keras.saving.load_model("{hub}")']
    if not generator.condition_inputs:
        lines.append('image = pix2pix_tf.read_image("photo.png", '
                     f'{generator.input_channels})')
        lines.append('pix2pix_tf.write_image(pix2pix_tf.translate(model, image), "out.png")')
    lines += ["```", "", "Command line:", "", "```bash",
              f"python -m pix2pix_tf.{'edit' if generator.condition_inputs else 'predict'} "
              f"--model {hub} {inputs} --output out/",
              f"python -m pix2pix_tf.train --data my_pairs/ --init {hub} --run-dir runs/mine"
              "   # fine-tune",
              f"python -m pix2pix_tf.export {hub} --web --serve              # the web page",
              "```", ""]
    if web:
        lines += ["The folder `web/` is that page, ready to serve statically.", ""]
    return lines


def publish(model, repo_id, folder, *, model_path=None, metrics_file=None, license="other",
            web=None, dry_run=False, token=None):
    """Writes the Hub folder for ``model`` into ``folder`` (see the module docstring; ``web``: a
    page folder written by ``export --web`` to include) and, unless ``dry_run``, uploads it to
    ``repo_id`` (created if missing; needs ``huggingface_hub`` and a token: ``huggingface-cli
    login`` or ``token=``). Returns the folder."""
    folder = Path(folder)
    if "/" not in repo_id or repo_id.count("/") > 1:
        raise ValueError(f"--hub takes user/repo (or org/repo); got {repo_id!r}.")
    folder.mkdir(parents=True, exist_ok=True)
    model.save(folder, zipped=False)  # the layout of Keras' own hf:// saving
    sample = Path(model_path).parent / "samples" / "final.png" if model_path else None
    if sample is not None and sample.is_file():
        shutil.copyfile(sample, folder / "sample.png")
    if web is not None:
        shutil.copytree(web, folder / "web", dirs_exist_ok=True)
    metrics, source = run_metrics(model_path, metrics_file)
    (folder / "README.md").write_text(model_card(
        model, repo_id, metrics=metrics, metrics_source=source, license=license,
        sample=(folder / "sample.png").is_file(), web=web is not None))
    if not dry_run:
        _upload(folder, repo_id, token)
    return folder


def _upload(folder, repo_id, token):
    try:
        import huggingface_hub
    except ImportError:
        raise ValueError("publishing needs huggingface_hub: pip install huggingface_hub "
                         "(or pass --dry-run to write the folder only).") from None
    api = huggingface_hub.HfApi(token=token, library_name=LIBRARY)
    api.create_repo(repo_id, exist_ok=True)
    api.upload_folder(repo_id=repo_id, folder_path=str(folder),
                      commit_message="Upload a pix2pix_tf model")
    print(f"published https://huggingface.co/{repo_id}; load it with "
          f"keras.saving.load_model('hf://{repo_id}')")
