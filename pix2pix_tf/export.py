"""``python -m pix2pix_tf.export``: see :mod:`pix2pix_tf.cli.export`."""

if __name__ == "__main__":
    import sys

    from pix2pix_tf.cli.export import main

    sys.exit(main())
