"""The command-line programs, one module each, thin over the library:

    python -m pix2pix_tf.train       pix2pix_tf/cli/train.py      (flags derived from TrainConfig)
    python -m pix2pix_tf.predict     pix2pix_tf/cli/predict.py
    python -m pix2pix_tf.evaluate    pix2pix_tf/cli/evaluate.py
    python -m pix2pix_tf.export      pix2pix_tf/cli/export.py
    python -m pix2pix_tf.cli.make_pairs   synthetic pairs from a folder of photos
    python -m pix2pix_tf.cli.make_demo    regenerates the bundled demo data (maintainers)

The short ``python -m pix2pix_tf.<command>`` names are two-line entry modules that call these.
"""
