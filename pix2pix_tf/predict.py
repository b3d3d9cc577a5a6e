"""``python -m pix2pix_tf.predict``: see :mod:`pix2pix_tf.cli.predict`."""

if __name__ == "__main__":
    import sys

    from pix2pix_tf.cli.predict import main

    sys.exit(main())
