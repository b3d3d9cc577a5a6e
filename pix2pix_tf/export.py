"""``python -m pix2pix_tf.export``: see :mod:`pix2pix_tf.cli.export`.

Imported (``import pix2pix_tf.export``), this module stands aside for the verb it is named
after: ``sys.modules`` then holds :func:`pix2pix_tf.exporters.export_model`, so that the import
cannot replace the package's ``pix2pix_tf.export`` function with a module.
"""

import sys

if __name__ == "__main__":
    from pix2pix_tf.cli.export import main

    sys.exit(main())
else:
    from pix2pix_tf.exporters import export_model

    sys.modules[__name__] = export_model
