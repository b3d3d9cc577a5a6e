"""``python -m pix2pix_tf.train``: see :mod:`pix2pix_tf.cli.train`.

Imported (``import pix2pix_tf.train``), this module stands aside for the verb it is named after:
``sys.modules`` then holds :func:`pix2pix_tf.training.train`, so that the import cannot replace
the package's ``pix2pix_tf.train`` function with a module.
"""

import sys

if __name__ == "__main__":
    from pix2pix_tf.cli.train import main

    sys.exit(main())
else:
    from pix2pix_tf.training import train

    sys.modules[__name__] = train
