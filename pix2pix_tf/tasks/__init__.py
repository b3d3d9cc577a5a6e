"""Tasks: the kinds of model this package trains, each a plug-in of the same trainer,
inference, evaluation and export (see :mod:`pix2pix_tf.tasks.base` for the contract).

    TASKS["translate"]   pix2pix: image -> image                      tasks/translate/
    TASKS["instruct"]    image + instruction -> edited image          tasks/instruct/

Importing this package registers both (and their model classes with Keras).
"""

from pix2pix_tf.tasks import instruct, translate  # noqa: F401  (register themselves)
from pix2pix_tf.tasks.base import TASKS, Examples, Task, get_task, register_task, task_of

__all__ = ["TASKS", "Examples", "Task", "get_task", "register_task", "task_of"]
