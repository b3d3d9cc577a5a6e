"""``python -m pix2pix_tf.train``: see :mod:`pix2pix_tf.cli.train`."""

if __name__ == "__main__":
    import sys

    from pix2pix_tf.cli.train import main

    sys.exit(main())
