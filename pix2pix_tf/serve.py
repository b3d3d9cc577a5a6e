"""``python -m pix2pix_tf.serve``: see :mod:`pix2pix_tf.cli.serve`."""

if __name__ == "__main__":
    import sys

    from pix2pix_tf.cli.serve import main

    sys.exit(main())
