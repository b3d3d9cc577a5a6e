"""``python -m pix2pix_tf.export``: see :mod:`pix2pix_tf.cli.export`."""

import sys

from pix2pix_tf.cli.export import main

sys.exit(main())
