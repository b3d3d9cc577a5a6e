"""``python -m pix2pix_tf.evaluate``: see :mod:`pix2pix_tf.cli.evaluate`."""

if __name__ == "__main__":
    import sys

    from pix2pix_tf.cli.evaluate import main

    sys.exit(main())
