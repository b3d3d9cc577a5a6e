from setuptools import find_packages, setup

setup(
    name="pix2pix_tf",
    version="0.1.0",
    description="Paired image-to-image translation (pix2pix, Isola et al. 2017) for Keras 3 / TensorFlow",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="MIT",
    packages=find_packages(include=["pix2pix_tf", "pix2pix_tf.*"]),
    # the bundled demo dataset (map -> satellite tiles, ~5 MB) and its attribution; the English
    # words the instruction editor's text encoder can read by spelling (240 KB, from wordfreq)
    package_data={"pix2pix_tf.data": ["demo/*/*.jpg", "demo/ATTRIBUTION.txt"],
                  "pix2pix_tf.tasks.instruct": ["english_words.txt"],
                  "pix2pix_tf.exporters": ["page/*.html", "page/*.js", "page/*.css"]},
    python_requires=">=3.10",
    # pix2pix-tf COMMAND ... (the list: pix2pix-tf --help), and a script per command
    entry_points={"console_scripts": [
        "pix2pix-tf = pix2pix_tf.__main__:main",
        *(f"pix2pix-{name} = pix2pix_tf.cli.{name}:main"
          for name in ("train", "predict", "evaluate", "edit", "export", "serve")),
    ]},
    install_requires=[
        # tensorflow-cpu is enough (and half the download); GPU users install `tensorflow`.
        "tensorflow-cpu>=2.16; platform_machine=='x86_64' and sys_platform=='linux'",
        "tensorflow>=2.16; platform_machine!='x86_64' or sys_platform!='linux'",
        "keras>=3.3",
        "tensorflow-datasets>=4.9",
        "matplotlib>=3.7",
        # TensorBoard logs of training runs; tensorflow-cpu 2.21 no longer depends on it
        "tensorboard",
        # older tf2onnx pins protobuf 3.20, which clashes with current TensorFlow
        "tf2onnx>=1.17",
        # the runtimes that verify every export against Keras (export reloads each artifact in
        # its own runtime); without them an export is written but not verified, with a note
        "onnxruntime",
        "ai-edge-litert",
    ],
    extras_require={
        # a pretrained text encoder for the instruction editor (--text-encoder); safetensors
        # reads Hugging Face checkpoints. On tensorflow-cpu install tensorflow-text with
        # --no-deps first: its wheel asks for the full `tensorflow` (docs/instruct.md)
        # huggingface_hub: hf:// models (--init, --model, export --hub)
        "hub": ["keras-hub>=0.32", "safetensors", "huggingface_hub"],
        # --data hf:NAME (Hugging Face instruction-editing datasets)
        "datasets": ["datasets"],
        # tfds.testing needs dill and importlib_resources; scikit-image's bundled photos feed
        # the synthetic-pair tests
        # nbclient + ipykernel execute the tutorial notebook in the tests; ruff lints (pyproject.toml)
        # datasets: the instruction editor's Hugging Face sources are tested against the real package
        # import-linter checks the import layers (.importlinter) in CI
        # playwright drives the system's Chromium in the web page's tests (never its own
        # browser download: .ci/run installs Debian's chromium)
        # hypothesis generates the fuzz cases of the hostile-file tests (tests/fuzzing.py)
        "dev": ["pytest>=7", "ruff", "import-linter", "dill", "importlib_resources",
                "scikit-image", "nbclient", "nbformat", "ipykernel", "datasets", "playwright",
                "hypothesis", "huggingface_hub"],
    },
)
