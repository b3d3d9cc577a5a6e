"""``python -m pix2pix_tf.edit``: see :mod:`pix2pix_tf.cli.edit`."""

if __name__ == "__main__":
    import sys

    from pix2pix_tf.cli.edit import main

    sys.exit(main())
